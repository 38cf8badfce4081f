"""The prompter service: consumes JobStarted from its work queue."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial

from services.prompter.handler import handle_job_started
from services.prompter.local import LocalPromptWriter
from services.prompter.port import PromptWriter
from services.runtime.context import Runtime

QUEUE = "prompter"


STEP = (1, "Generating video prompts")


def make_writer(rt: Runtime, env: Mapping[str, str] | None = None) -> PromptWriter:
    """The provider ADAGENT_PROMPTER names. A cloud one checks its credentials here, so a missing one stops the
    service at start with the variable named, not the first job."""
    if rt.settings.prompter == "gemini":
        from services.prompter.gemini import GeminiConfig, GeminiPromptWriter

        config = GeminiConfig.from_env(os.environ if env is None else env)
        writer = GeminiPromptWriter(config, rt.storage, work_dir=rt.settings.work_dir / "prompter")
        rt.closers.append(writer.aclose)
        return writer
    return LocalPromptWriter()


async def start(rt: Runtime, writer: PromptWriter | None = None) -> None:
    rt.steps[QUEUE] = STEP
    handler = partial(handle_job_started, rt=rt, writer=writer or make_writer(rt))
    await rt.bus.consume_events(QUEUE, ["JobStarted"], handler, concurrency=4)
