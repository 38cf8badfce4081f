"""Where a renderer notes the paid, long-running operations it started, so a restart resumes instead of paying again.

The note is an event in the job's history (ClipGenerationSubmitted): the same store every renderer process reads,
written before the first poll, so whichever process gets the redelivered RenderClip finds it."""

from __future__ import annotations

from typing import Protocol

from contracts.events import ClipGenerationSubmitted, event_id
from services.runtime.context import Runtime


class OperationLog(Protocol):
    async def latest(self, job_id: str, index: int) -> ClipGenerationSubmitted | None:
        """The newest operation submitted for this clip, if any."""
        ...

    async def submitted(self, job_id: str, index: int, provider: str, operation_name: str) -> ClipGenerationSubmitted:
        """Record a new operation for this clip (attempt = the previous one's + 1)."""
        ...


class HistoryOperationLog:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def latest(self, job_id: str, index: int) -> ClipGenerationSubmitted | None:
        history = await self._rt.history(job_id)
        found = [e for e in history.all(ClipGenerationSubmitted) if e.index == index]
        return max(found, key=lambda e: e.attempt) if found else None

    async def submitted(self, job_id: str, index: int, provider: str, operation_name: str) -> ClipGenerationSubmitted:
        previous = await self.latest(job_id, index)
        attempt = 1 if previous is None else previous.attempt + 1
        event = ClipGenerationSubmitted(
            event_id=event_id(job_id, "clip-submitted", index, attempt),
            job_id=job_id,
            index=index,
            attempt=attempt,
            provider=provider,
            operation_name=operation_name,
        )
        recorded = (await self._rt.recorder.record(event)).recorded.event
        assert isinstance(recorded, ClipGenerationSubmitted)
        return recorded
