"""The renderer service: consumes RenderClip commands, up to ADAGENT_RENDER_CONCURRENCY at once per process."""

from __future__ import annotations

from functools import partial

from services.renderer.handler import handle_render_clip
from services.renderer.local import LocalClipRenderer
from services.renderer.port import ClipRenderer
from services.runtime.context import Runtime

QUEUE = "renderer"


STEP = (2, "Generating a clip")


async def start(rt: Runtime, renderer: ClipRenderer | None = None) -> None:
    rt.steps[QUEUE] = STEP
    handler = partial(handle_render_clip, rt=rt, renderer=renderer or LocalClipRenderer())
    await rt.bus.consume_commands(QUEUE, ["RenderClip"], handler, concurrency=rt.settings.render_concurrency)
