"""The merger service: consumes ClipRendered events."""

from __future__ import annotations

from functools import partial

from services.merger.handler import handle_clip_rendered
from services.runtime.context import Runtime

QUEUE = "merger"


STEP = (3, "Merging video clips")


async def start(rt: Runtime) -> None:
    rt.steps[QUEUE] = STEP
    await rt.bus.consume_events(QUEUE, ["ClipRendered"], partial(handle_clip_rendered, rt=rt), concurrency=2)
