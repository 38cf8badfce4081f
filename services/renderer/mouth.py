"""How far the avatar's mouth is open on each video frame, from the speech's loudness.

RMS over a Hann window two frames long centred on each frame, relative to the line's own loud level (so a quiet and a
loud voice move alike), with a noise gate so pauses and the silent tail are exactly closed, then lightly smoothed.
The performance (`animation.performance`) scales the visemes' jaw by it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]

# Loudness mapping: the frame's RMS amplitude relative to the line's loud level (the 95th percentile over voiced
# frames), raised to a power below 1 so quieter syllables still move the lips; the loud level opens the mouth to
# _LOUD_OPEN, louder peaks up to 1.
_LOUD_PERCENTILE: Final = 95
_LOUD_OPEN: Final = 0.85
_CURVE: Final = 0.75
_GATE_DB: Final = -30.0  # below this relative to the loud level, or below _FLOOR_DBFS, the frame is silence
_FLOOR_DBFS: Final = -55.0


def openness(samples: Floats, rate: int, frames: int, fps: int) -> Floats:
    """How open the mouth is on each of `frames` video frames, 0..1, from the speech `samples` at `rate`."""
    hop = rate / fps
    half = max(1, round(hop))  # the window spans two frames: one syllable's rise is seen, single frames are not
    window = np.hanning(2 * half + 1).astype(np.float32)
    padded = np.pad(samples.astype(np.float32), half)
    centres = np.round((np.arange(frames) + 0.5) * hop).astype(np.int64)
    level_db = np.full(frames, -120.0, np.float32)
    for i, centre in enumerate(centres):
        chunk = padded[centre : centre + 2 * half + 1]
        if len(chunk) == len(window):
            energy = float(np.sum((chunk * window) ** 2) / np.sum(window**2))
            level_db[i] = 10 * np.log10(energy + 1e-12)
    voiced = level_db[level_db > _FLOOR_DBFS]
    if len(voiced) == 0:
        return np.zeros(frames, np.float32)
    loud = float(np.percentile(voiced, _LOUD_PERCENTILE))
    relative = level_db - loud
    raw = np.clip(_LOUD_OPEN * np.power(10.0, relative / 20) ** _CURVE, 0.0, 1.0).astype(np.float32)
    raw[(relative < _GATE_DB) | (level_db < _FLOOR_DBFS)] = 0.0
    # Lips move no faster than about 10 Hz; a 3-tap smoothing removes frame-to-frame flicker and keeps syllables.
    smooth = np.convolve(np.pad(raw, 1), np.array([0.25, 0.5, 0.25], np.float32), mode="valid")
    return smooth.astype(np.float32)
