"""Job ids shaped like the seed's (`ad_` + microseconds since the epoch), strictly increasing in a process."""

from __future__ import annotations

import re
import threading
import time

JOB_ID_PATTERN = re.compile(r"^ad_[0-9]{16,20}$")

_lock = threading.Lock()
_last = 0


def new_job_id() -> str:
    """Unique within a process even when called many times in one microsecond; across processes the event
    store's unique (job_id, seq) constraint rejects a collision and the caller draws again."""
    global _last
    with _lock:
        now = time.time_ns() // 1000
        _last = now if now > _last else _last + 1
        return f"ad_{_last}"


def is_job_id(value: str) -> bool:
    return bool(JOB_ID_PATTERN.fullmatch(value))  # `$` alone would let a trailing newline through
