"""Cut a voice track into pieces a speech-to-speech API accepts, and put the converted pieces back together.

Cuts go in the quietest stretch near the end of each piece (the middle of a pause between words), so no word is split
and the converted pieces meet where both sides are silent: there is nothing for a join to click on. Each converted
piece is padded or trimmed to exactly the length its source piece covers, on a grid computed from the source's sample
positions, so the joined track is as long as the source to the sample and the picture stays in sync.
"""

from __future__ import annotations

import io
import wave
from typing import Final

import numpy as np
import numpy.typing as npt

FRAME_S: Final = 0.010  # loudness is read per 10 ms frame
SMOOTH_S: Final = 0.060  # over a word-gap-sized window, so a single quiet pitch period is not mistaken for a pause
QUIET_MARGIN_DB: Final = 3.0  # frames this close to the quietest count as part of the same pause
# A cut is searched in the last half of the allowed length: pieces stay long (fewer requests) and a piece is never
# cut to a sliver when speech runs on without a pause.
MIN_FILL: Final = 0.5

Samples = npt.NDArray[np.float32]
Pcm16 = npt.NDArray[np.int16]


def _frame_levels_db(samples: Samples, rate: int) -> npt.NDArray[np.float64]:
    """Smoothed level (dBFS) of each FRAME_S frame."""
    hop = max(1, round(FRAME_S * rate))
    frames = len(samples) // hop
    power = np.square(samples[: frames * hop].astype(np.float64)).reshape(frames, hop).mean(axis=1)
    width = max(1, round(SMOOTH_S / FRAME_S))
    smoothed = np.convolve(power, np.ones(width) / width, mode="same")
    return np.asarray(10.0 * np.log10(smoothed + 1e-12), dtype=np.float64)


def _quietest_point(levels: npt.NDArray[np.float64], lo: int, hi: int) -> int:
    """The frame in the middle of the longest run of near-quietest frames in [lo, hi)."""
    window = levels[lo:hi]
    quiet = window <= window.min() + QUIET_MARGIN_DB
    best_start, best_len, start = 0, 0, None
    for i, q in enumerate([*quiet.tolist(), False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = None
    return lo + best_start + best_len // 2


def plan_chunks(samples: Samples, rate: int, max_samples: int) -> list[tuple[int, int]]:
    """Split [0, len(samples)) into consecutive [start, end) pieces of at most `max_samples`, cut at pauses."""
    total = len(samples)
    if total <= max_samples:
        return [(0, total)]
    hop = max(1, round(FRAME_S * rate))
    levels = _frame_levels_db(samples, rate)
    bounds: list[tuple[int, int]] = []
    start = 0
    while total - start > max_samples:
        lo = (start + round(max_samples * MIN_FILL)) // hop
        hi = (start + max_samples) // hop  # frame hi starts at or before the limit, so the cut stays within it
        cut = min(_quietest_point(levels, lo, max(hi, lo + 1)) * hop + hop // 2, start + max_samples)
        cut = max(cut, start + 1)  # always progress, even with a limit shorter than a frame
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds


def output_lengths(bounds: list[tuple[int, int]], source_rate: int, output_rate: int) -> list[int]:
    """How many output samples each piece must fill: the rounded positions of the cuts at the output rate, so the
    rounding never accumulates over many pieces."""
    return [round(end * output_rate / source_rate) - round(start * output_rate / source_rate) for start, end in bounds]


def fit(pcm: Pcm16, length: int) -> Pcm16:
    """Pad with silence or trim at the end to exactly `length` samples."""
    if len(pcm) >= length:
        return pcm[:length]
    return np.concatenate([pcm, np.zeros(length - len(pcm), dtype=np.int16)])


def to_pcm16(samples: Samples) -> Pcm16:
    return np.asarray(np.clip(np.round(samples * 32767.0), -32768, 32767), dtype=np.int16)


def wav_bytes(pcm: Pcm16, rate: int) -> bytes:
    """A mono 16-bit WAV file in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def pcm16_from_bytes(data: bytes) -> Pcm16:
    """Raw little-endian 16-bit mono PCM, as the API's pcm_* output formats send it."""
    usable = len(data) - len(data) % 2
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
