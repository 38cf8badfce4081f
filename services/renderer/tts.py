"""The default local voice as plain samples or a WAV file: the interface the renderer used before `voices.py`.

Thin wrappers over `voices.get_voice(None)`; new code should call `get_voice(voice_id).synthesize(text)`, which
also gives the word timings. CPU-bound and blocking: async callers run these with asyncio.to_thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from services.renderer.piper_voice import SENTENCE_GAP_S
from services.renderer.voices import get_voice

__all__ = ["SENTENCE_GAP_S", "synthesize", "write_wav"]


def synthesize(text: str) -> tuple[npt.NDArray[np.int16], int]:
    """Speak `text` in the default voice; return mono 16-bit samples and their sample rate."""
    speech = get_voice(None).synthesize(text)
    return speech.samples, speech.sample_rate


def write_wav(text: str, path: Path) -> float:
    """Speak `text` in the default voice into a mono 16-bit WAV at `path`; return its length in seconds."""
    return get_voice(None).synthesize(text).write_wav(path)
