"""The voice service: consumes ClipsMerged events (steps 4 and 5)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial

from services.runtime.context import Runtime
from services.voice.handler import handle_clips_merged
from services.voice.local import LocalVoiceEnhancer
from services.voice.port import VoiceEnhancer

QUEUE = "voice"


STEP = (4, "Enhancing the voice")


def make_enhancer(rt: Runtime, env: Mapping[str, str] | None = None) -> VoiceEnhancer:
    """The provider ADAGENT_VOICE names; a cloud one checks its credentials here, at start. One instance serves the
    whole process, so ElevenLabs' concurrency limit holds across jobs."""
    if rt.settings.voice == "elevenlabs":
        from services.voice.elevenlabs import ElevenLabsConfig, ElevenLabsVoiceEnhancer

        return ElevenLabsVoiceEnhancer(ElevenLabsConfig.from_env(os.environ if env is None else env))
    return LocalVoiceEnhancer()


async def start(rt: Runtime, enhancer: VoiceEnhancer | None = None) -> None:
    rt.steps[QUEUE] = STEP
    handler = partial(handle_clips_merged, rt=rt, enhancer=enhancer or make_enhancer(rt))
    await rt.bus.consume_events(QUEUE, ["ClipsMerged"], handler, concurrency=2)
