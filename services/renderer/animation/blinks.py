"""When the eyes blink: irregular gaps, a little more often in the speaker's pauses, never at a clip's edges.

People blink 8-25 times a minute, at irregular intervals (gamma-like: a short refractory time, then a long tail),
more often at pauses and the ends of phrases, and sometimes twice in a row. A blink lasts 100-300 ms: the lid comes
down fast and goes up more slowly. None starts within EDGE_S of a clip's start or ends within it of its end, so every
clip starts and ends with the eyes open and clips join without a jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]

EDGE_S: Final = 0.4
REFRACTORY_S: Final = 0.6  # no blink follows another this soon (a double blink aside)
GAMMA_SHAPE: Final = 2.0
GAMMA_MEAN_S: Final = 2.8  # on top of the refractory time: 3.4 s between blinks on average, ~18 a minute
DURATION_S: Final = (0.12, 0.28)
CLOSING_SHARE: Final = 0.35  # of a blink's time, the lid coming down
PAUSE_REACH_S: Final = 0.8  # a blink due this close to a pause...
PAUSE_PULL: Final = 0.5  # ...moves into it with this probability
MIN_PAUSE_S: Final = 0.2
DOUBLE_CHANCE: Final = 0.08
DOUBLE_GAP_S: Final = (0.08, 0.2)  # eyes open between the two blinks of a double blink


@dataclass(frozen=True)
class Blink:
    start: float  # seconds
    duration: float

    @property
    def peak(self) -> float:
        return self.start + CLOSING_SHARE * self.duration

    @property
    def end(self) -> float:
        return self.start + self.duration


def blinks(duration_s: float, fps: float, *, seed: int, pauses: Sequence[tuple[float, float]] = ()) -> list[Blink]:
    """The blinks of a clip `duration_s` long; `pauses` are (start, end) seconds where the voice is silent."""
    rng = np.random.default_rng([seed, 0xB1])
    long_pauses = [(a, b) for a, b in pauses if b - a >= MIN_PAUSE_S]
    out: list[Blink] = []
    # A random phase: the clip begins somewhere inside the speaker's blinking, not just after a blink.
    t = EDGE_S + rng.uniform(0.0, REFRACTORY_S + GAMMA_MEAN_S)
    while t < duration_s:
        due = t
        t += REFRACTORY_S + rng.gamma(GAMMA_SHAPE, GAMMA_MEAN_S / GAMMA_SHAPE)
        near = [(a, b) for a, b in long_pauses if abs((a + b) / 2 - due) < PAUSE_REACH_S]
        if near and rng.random() < PAUSE_PULL:
            a, b = near[0]
            due = a + rng.uniform(0.1, 0.5) * (b - a)
        group = [_blink(due, rng, fps)]
        if rng.random() < DOUBLE_CHANCE:
            group.append(_blink(group[0].end + rng.uniform(*DOUBLE_GAP_S), rng, fps))
        if group[0].start < EDGE_S or group[-1].end > duration_s - EDGE_S:
            continue
        if out and group[0].start < out[-1].end + REFRACTORY_S:
            continue
        out.extend(group)
    return out


def _blink(start: float, rng: np.random.Generator, fps: float) -> Blink:
    """A blink starting near `start`, moved so its lid is fully down at a frame's middle (a shut eye is seen)."""
    duration = rng.uniform(*DURATION_S)
    peak = (np.floor((start + CLOSING_SHARE * duration) * fps) + 0.5) / fps
    return Blink(float(peak - CLOSING_SHARE * duration), float(duration))


def closure(events: Sequence[Blink], frames: int, fps: float) -> Floats:
    """Lid closure 0..1 on each frame (looked at in its middle)."""
    times = (np.arange(frames) + 0.5) / fps
    out = np.zeros(frames)
    for b in events:
        closing = CLOSING_SHARE * b.duration
        down = np.clip((times - b.start) / closing, 0.0, 1.0)
        up = np.clip((times - b.peak) / (b.duration - closing), 0.0, 1.0)
        shape = np.where(times <= b.peak, down * down * (3 - 2 * down), 1 - up * up * (3 - 2 * up))
        shape[(times <= b.start) | (times >= b.end)] = 0.0
        out = np.maximum(out, shape)
    return out.astype(np.float32)


def blink_track(
    frames: int, fps: float, *, seed: int, pauses: Sequence[tuple[float, float]] = ()
) -> tuple[Floats, Floats]:
    """(left, right) lid closure per frame. Both eyes blink together, as people's do."""
    left = closure(blinks(frames / fps, fps, seed=seed, pauses=pauses), frames, fps)
    return left, left.copy()
