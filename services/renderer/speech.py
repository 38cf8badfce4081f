"""What a local voice gives back: the spoken samples, and when each word of the text is heard in them."""

from __future__ import annotations

import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from contracts.events import WordTiming
from services.renderer.word_timing import TimedPhoneme


@dataclass(frozen=True)
class Speech:
    samples: npt.NDArray[np.int16]  # mono
    sample_rate: int
    words: list[WordTiming]  # every word of the text as written, in order, in seconds from the first sample
    # What the voice said, sound by sound, in seconds from the first sample (espeak IPA symbols, stress and length
    # marks as their own entries); empty when the voice does not say (then the avatar's lips estimate them).
    phonemes: tuple[TimedPhoneme, ...] = ()

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def write_wav(self, path: Path) -> float:
        """Write a mono 16-bit WAV at `path`; return its length in seconds."""
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(self.samples.astype("<i2", copy=False).tobytes())
        return self.duration_s


class LocalVoice(Protocol):
    """A voice that speaks on this machine. CPU-bound and blocking: async callers use asyncio.to_thread."""

    @property
    def voice_id(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def licence(self) -> str: ...

    def synthesize(self, text: str) -> Speech:
        """Speak `text`. The same text always gives the same number of samples and the same word timings."""
        ...


M = TypeVar("M")


class LazyLocalVoice(Generic[M]):
    """What every local voice shares: its catalogue entry, and a model loaded once per process, on first use, that
    renders in parallel threads share."""

    def __init__(self, voice_id: str, *, description: str, licence: str) -> None:
        self._voice_id = voice_id
        self._description = description
        self._licence = licence
        self._loaded: M | None = None
        self._lock = threading.Lock()

    @property
    def voice_id(self) -> str:
        return self._voice_id

    @property
    def description(self) -> str:
        return self._description

    @property
    def licence(self) -> str:
        return self._licence

    def _load_model(self) -> M:
        raise NotImplementedError

    def _load(self) -> M:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load_model()
        return self._loaded
