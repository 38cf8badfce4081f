from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from contracts.job_ids import new_job_id


def test_job_ids_look_like_the_seeds_and_are_unique_under_concurrency() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: new_job_id(), range(5000)))
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"ad_\d{16}", i) for i in ids)
