"""Where a clip's speech is: its voiced stretches, found from short-window loudness (RMS energy).

For clips whose provider says nothing about timing (Veo): the clip is cut after the last stretch and its line's
words are spread over the stretches (`word_estimate`).

The level is measured in 20 ms windows every 10 ms, in dB under full scale. "Loud" is the 95th percentile of the
windows above the floor: the loud part of the speech, unmoved by a single click and unlowered by however much
silence the clip holds. A stretch is a run of windows within OFF_DB of loud that somewhere reaches within ON_DB of
loud (hysteresis: a soft onset or decay next to a loud syllable belongs to it, a soft noise alone does not).
Stretches closer than MIN_GAP_S are one (a stop consonant's closure dips inside a word; fluent words run together),
and a stretch shorter than MIN_VOICED_S left over is a click, not speech.

A steady background within ON_DB of the voice (music, a loud room) reads as speech: the span then reaches further
and the clip is cut later or not at all, which loses time but never a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from services.runtime.media_probe import decode_audio

ANALYSIS_RATE: Final = 16000  # speech's energy is well under 8 kHz; a third of 48 kHz is a third of the work
WINDOW_S: Final = 0.020  # a pitch period or two at the lowest voices: short enough to see a pause between words
HOP_S: Final = 0.010
LOUD_PERCENTILE: Final = 95.0
ON_DB: Final = -25.0  # relative to loud: a stretch must reach this
OFF_DB: Final = -35.0  # relative to loud: and lasts while above this (soft consonants, a word's decay)
# Never speech, however quiet the loud part is: AAC's rounding noise and an empty room sit below it.
FLOOR_DBFS: Final = -55.0
MIN_GAP_S: Final = 0.18  # shorter silences are inside a word or between words said together; longer ones are pauses
MIN_VOICED_S: Final = 0.06  # shorter bursts are clicks

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SpeechSpan:
    """The voiced stretches of a clip, in order, apart from each other, as (start, end) seconds from its start."""

    stretches: tuple[tuple[float, float], ...]

    @property
    def start(self) -> float:
        return self.stretches[0][0]

    @property
    def end(self) -> float:
        return self.stretches[-1][1]

    @property
    def pauses(self) -> list[tuple[float, float]]:
        """The silences between stretches, as (start, end) seconds."""
        return [(a[1], b[0]) for a, b in pairwise(self.stretches)]


def window_levels_db(samples: Samples, rate: int) -> npt.NDArray[np.float64]:
    """The RMS level (dBFS) of each WINDOW_S window, one every HOP_S; window i is centred at (i + 1) * HOP_S."""
    window, hop = max(1, round(WINDOW_S * rate)), max(1, round(HOP_S * rate))
    if len(samples) < window:
        return np.zeros(0)
    count = 1 + (len(samples) - window) // hop
    sums = np.concatenate(([0.0], np.cumsum(np.square(samples.astype(np.float64)))))
    starts = np.arange(count) * hop
    power = (sums[starts + window] - sums[starts]) / window
    return np.asarray(10.0 * np.log10(power + 1e-12), dtype=np.float64)


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[first, last] window index of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def find_speech(samples: Samples, rate: int) -> SpeechSpan | None:
    """The voiced stretches of mono `samples` (float, full scale 1.0); None when nothing is loud enough to be speech."""
    levels = window_levels_db(samples, rate)
    audible = levels[levels > FLOOR_DBFS]
    if audible.size == 0:
        return None
    loud = float(np.percentile(audible, LOUD_PERCENTILE))
    on, off = max(loud + ON_DB, FLOOR_DBFS), max(loud + OFF_DB, FLOOR_DBFS)
    kept = [(a, b) for a, b in _runs(levels >= off) if levels[a : b + 1].max() >= on]
    merged: list[tuple[float, float]] = []
    for a, b in kept:
        # A run of windows covers from half a hop before its first centre to half a hop after its last.
        start, end = (a + 0.5) * HOP_S, (b + 1.5) * HOP_S
        if merged and start - merged[-1][1] < MIN_GAP_S:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    limit = len(samples) / rate
    stretches = tuple((round(s, 3), round(min(e, limit), 3)) for s, e in merged if e - s >= MIN_VOICED_S)
    return SpeechSpan(stretches) if stretches else None


def speech_in_file(path: Path) -> SpeechSpan | None:
    """The speech in a media file's first audio track (downmixed to mono); None without audio or without speech."""
    samples = decode_audio(path, ANALYSIS_RATE)
    return find_speech(samples, ANALYSIS_RATE)
