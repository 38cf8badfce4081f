"""The voice service: consumes ClipsMerged events (steps 4 and 5)."""

from __future__ import annotations

from functools import partial

from services.runtime.context import Runtime
from services.voice.handler import handle_clips_merged
from services.voice.local import LocalVoiceEnhancer
from services.voice.port import VoiceEnhancer

QUEUE = "voice"


STEP = (4, "Enhancing the voice")


async def start(rt: Runtime, enhancer: VoiceEnhancer | None = None) -> None:
    rt.steps[QUEUE] = STEP
    handler = partial(handle_clips_merged, rt=rt, enhancer=enhancer or LocalVoiceEnhancer())
    await rt.bus.consume_events(QUEUE, ["ClipsMerged"], handler, concurrency=2)
