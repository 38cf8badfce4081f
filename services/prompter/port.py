"""What a prompt provider does: turn the requested job into an ordered list of clips."""

from __future__ import annotations

from typing import Protocol

from contracts.events import ClipPlan, JobRequested


class PromptWriter(Protocol):
    async def write_prompts(self, job: JobRequested) -> list[ClipPlan]: ...
