"""The prompter service: consumes JobStarted from its work queue."""

from __future__ import annotations

from functools import partial

from services.prompter.handler import handle_job_started
from services.prompter.local import LocalPromptWriter
from services.prompter.port import PromptWriter
from services.runtime.context import Runtime

QUEUE = "prompter"


STEP = (1, "Generating video prompts")


async def start(rt: Runtime, writer: PromptWriter | None = None) -> None:
    rt.steps[QUEUE] = STEP
    handler = partial(handle_job_started, rt=rt, writer=writer or LocalPromptWriter())
    await rt.bus.consume_events(QUEUE, ["JobStarted"], handler, concurrency=4)
