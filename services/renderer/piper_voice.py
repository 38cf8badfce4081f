"""A piper voice (the bundled "joe", en_US-joe-medium), with word timings from piper's own phoneme alignments.

Determinism: with noise_w_scale=0 the duration predictor has no randomness, so the same text always yields the same
number of samples and the same phoneme durations, hence the same clip length and word timings. The waveform itself
is NOT bit-identical from run to run: the voice's noise_scale feeds random noise into the flow decoder
(onnxruntime's RandomNormalLike, not seedable per call). Word timings therefore come from the durations only, never
from the waveform.

Alignments: piper 1.8 reports how many samples each phoneme lasts when the model exposes its `w_ceil` tensor.
The joe model file does not, so `PiperVoice.load(include_alignments=True)` marks that tensor as an output in a
copy of the model held in memory. That costs about 0.7 s once per process and writes nothing to disk (no 63 MB
patched copy to keep in step with the package). Should it ever fail (no `onnx` package, another export), piper
gives no alignments and each sentence's time is spread evenly over its phonemes: coarser, never missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from services.renderer.speech import LazyLocalVoice, Speech
from services.renderer.word_timing import TimedPhoneme, align_words, script_words

if TYPE_CHECKING:
    from piper import AudioChunk, PiperVoice

# Piper joins sentences with no pause at all; people breathe between them.
SENTENCE_GAP_S: Final = 0.2
_MARKERS: Final = frozenset("^$_")  # piper's begin, end and pad symbols


class PiperLocalVoice(LazyLocalVoice["PiperVoice"]):
    def __init__(
        self,
        voice_id: str,
        *,
        description: str,
        licence: str,
        model_path: Callable[[], Path],
        config_path: Callable[[], Path],
    ) -> None:
        super().__init__(voice_id, description=description, licence=licence)
        self._model_path = model_path
        self._config_path = config_path

    def _load_model(self) -> PiperVoice:
        """About 1.4 s and 60 MB."""
        from piper import PiperVoice

        return PiperVoice.load(self._model_path(), config_path=self._config_path(), include_alignments=True)

    def synthesize(self, text: str) -> Speech:
        from piper import SynthesisConfig

        voice = self._load()
        rate = voice.config.sample_rate
        gap = np.zeros(round(SENTENCE_GAP_S * rate), dtype=np.int16)
        parts: list[npt.NDArray[np.int16]] = []
        spoken: list[TimedPhoneme] = []
        offset = 0
        for chunk in voice.synthesize(text, syn_config=SynthesisConfig(noise_w_scale=0.0), include_alignments=True):
            if parts:
                parts.append(gap)
                offset += len(gap)
            audio: npt.NDArray[np.int16] = chunk.audio_int16_array
            spoken += _timeline(chunk, offset, len(audio), rate)
            parts.append(audio)
            offset += len(audio)
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        words = script_words(text)
        # Each word read alone, by the same espeak-ng (piper serialises its calls with a lock).
        expected = [[p for sentence in voice.phonemize(word) for p in sentence] for word in words]
        return Speech(samples, rate, align_words(words, expected, spoken), phonemes=_timed_only(spoken))


def _timed_only(spoken: list[TimedPhoneme]) -> tuple[TimedPhoneme, ...]:
    """The timeline without piper's begin, end and pad markers that last no time (those that do are pauses)."""
    return tuple(p for p in spoken if not (p.phoneme in _MARKERS and p.end <= p.start))


def _timeline(chunk: AudioChunk, offset: int, length: int, rate: int) -> list[TimedPhoneme]:
    """The chunk's phonemes with their times in the whole speech (`offset` = the chunk's first sample)."""
    if chunk.phoneme_alignments:
        out: list[TimedPhoneme] = []
        at = offset
        for alignment in chunk.phoneme_alignments:
            end = at + int(alignment.num_samples)
            out.append(TimedPhoneme(alignment.phoneme, at / rate, end / rate))
            at = end
        return out
    # No alignments: spread the sentence evenly over its phonemes.
    phonemes = list(chunk.phonemes) or [" "]
    step = length / len(phonemes)
    return [
        TimedPhoneme(p, (offset + i * step) / rate, (offset + (i + 1) * step) / rate) for i, p in enumerate(phonemes)
    ]
