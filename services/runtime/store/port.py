"""The event store interface. The store is the source of truth: job state and SSE streams are projections of it."""

from __future__ import annotations

from typing import Protocol

from contracts.events import AnyEvent, RecordedEvent
from contracts.job_view import JobView


class DuplicateEvent(Exception):
    """The event id is already in the store: the fact was recorded before (a redelivery), so do nothing again."""

    def __init__(self, existing: RecordedEvent) -> None:
        super().__init__(existing.event.event_id)
        self.existing = existing


class IdempotencyConflict(Exception):
    """The owner already has a job with this Idempotency-Key: nothing was appended."""

    def __init__(self, existing: JobView) -> None:
        super().__init__(existing.job_id)
        self.existing = existing


class EventStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, event: AnyEvent) -> RecordedEvent:
        """Append with the job's next sequence number (1, 2, ...). Raises DuplicateEvent for a known event id."""
        ...

    async def history(self, job_id: str, after_seq: int = 0) -> list[RecordedEvent]:
        """The job's events with seq > after_seq, in order."""
        ...

    async def job_ids(self, limit: int = 100) -> list[str]:
        """Job ids, newest first."""
        ...

    async def job_ids_active_since(self, since: float) -> list[str]:
        """Ids of the jobs with an event recorded at or after `since` (epoch seconds), in no particular order."""
        ...

    # The job view (contracts.job_view) is updated in the same transaction as each append.

    async def job(self, job_id: str) -> JobView | None: ...

    async def jobs(self, owner: str, *, after: str | None = None, limit: int = 20) -> list[JobView]:
        """The owner's jobs, newest first, starting after job id `after` (the cursor)."""
        ...

    async def queued_jobs(self) -> list[JobView]:
        """Jobs waiting to start, in the order they should start: priority, then first come first served."""
        ...

    async def running_jobs(self) -> list[JobView]: ...

    async def job_by_idempotency_key(self, owner: str, key: str) -> JobView | None: ...

    async def rebuild_views(self) -> tuple[int, int]:
        """Replace every job view with the fold of the events (appends wait meanwhile); (jobs, events) read."""
        ...
