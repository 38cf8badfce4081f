"""The worker registry: one row per consumer of a step's queue, renewed while its process lives, naming the jobs whose
messages it is handling; and named leases, for work that one process at a time must do (the scheduler's sweep).

Rows and leases are not facts of any job's history: they are overwritten in place and forgotten, so they live beside
the event store (same database) rather than in it, and cost one small write per renewal whatever the job count.
Times are the registry's clock (`now`), the clock the event store stamps `recorded_at` with, so a sweep can compare
a row's age with a job's last event even when the processes run on hosts whose clocks differ."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec


class WorkerPresence(msgspec.Struct, frozen=True, kw_only=True):
    worker_id: str  # unique per process and queue
    queue: str
    capacity: int  # messages it handles at once (the consumer's concurrency, its prefetch)
    busy: int  # messages it is handling now
    jobs: list[str]  # the jobs those messages belong to
    renewed_at: float = 0.0  # set by the registry when it stores the row


class WorkerRegistry(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def now(self) -> float:
        """The registry's clock (epoch seconds): the event store's clock too."""
        ...

    async def renew(self, workers: Sequence[WorkerPresence]) -> None:
        """Store these rows (replacing this worker's previous one), stamped with the registry's clock."""
        ...

    async def forget(self, worker_ids: Sequence[str]) -> None: ...

    async def live(self, within: float) -> list[WorkerPresence]:
        """The rows renewed less than `within` seconds ago."""
        ...

    async def claim(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew lease `name` for `seconds`: True when `holder` has it now (it was free, had expired, or was
        already `holder`'s)."""
        ...

    async def release(self, name: str, holder: str) -> None:
        """Give lease `name` back if `holder` has it, so another process may take it at once."""
        ...
