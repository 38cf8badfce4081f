"""The camera of a local clip: a slow move that starts and ends on the same framing, so clips join without a jump.

Clips are rendered in parallel by different workers and none knows when its clip starts in the ad, so the camera
cannot follow the ad's clock. Instead every clip starts and ends at rest on the neutral framing (the whole canvas
shown), and moves in between: a push-in and a drift that ease in and out (the weight sin²(πt) and its velocity are 0
at both ends). What the camera does in between depends on the clip's place in the script (`move_for`), so
consecutive clips are not framed alike.

The canvas is the frame enlarged by the renderer's margin; the move spends that margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CameraMove:
    """What the camera does at mid-clip: `depth` is the share of the margin the zoom uses (1 = a 1:1 crop);
    `drift` moves the crop's centre, as a share of the margin left free at that zoom (x right, y down, -1..1)."""

    depth: float
    drift: tuple[float, float]


# A push-in to the face, then gentler pushes that drift sideways or up: four moves, taken in turn.
MOVES: Final = (
    CameraMove(1.0, (0.0, -0.4)),
    CameraMove(0.55, (-0.9, 0.0)),
    CameraMove(0.8, (0.3, -0.9)),
    CameraMove(0.55, (0.9, 0.2)),
)


def move_for(index: int) -> CameraMove:
    """The move of the script's clip `index` (1-based)."""
    return MOVES[(index - 1) % len(MOVES)]


@dataclass(frozen=True)
class PushIn:
    """The camera over a clip of `frames` frames: which part of the canvas each frame shows.

    Frames 0 and `frames - 1` show the whole canvas (the neutral framing every clip shares).
    """

    canvas: tuple[int, int]
    frame: tuple[int, int]
    frames: int
    move: CameraMove = MOVES[0]

    @property
    def _start(self) -> float:
        return min(self.canvas[0] / self.frame[0], self.canvas[1] / self.frame[1])

    def weight(self, n: int) -> float:
        """How far into its move the camera is on frame `n`: 0 at both ends, 1 at mid-clip, eased."""
        t = n / max(1, self.frames - 1)
        return math.sin(math.pi * t) ** 2

    def scale(self, n: int) -> float:
        """Canvas pixels per frame pixel on frame `n`."""
        return self._start / (1 + (self._start - 1) * self.move.depth * self.weight(n))

    def centre(self, n: int) -> tuple[float, float]:
        """The canvas point at the frame's centre on frame `n`."""
        k, w = self.scale(n), self.weight(n)
        shown = [k * (f - 1) / 2 for f in self.frame]
        free = [max(0.0, (c - 1) / 2 - s) for c, s in zip(self.canvas, shown, strict=True)]
        return (
            (self.canvas[0] - 1) / 2 + w * self.move.drift[0] * free[0],
            (self.canvas[1] - 1) / 2 + w * self.move.drift[1] * free[1],
        )

    def matrix(self, n: int, *, chroma: bool = False) -> npt.NDArray[np.float64]:
        """The affine map from frame (or 4:2:0 chroma) pixel coordinates to canvas ones, for `WARP_INVERSE_MAP`."""
        k = self.scale(n)
        cx, cy = self.centre(n)
        ox, oy = (self.frame[0] - 1) / 2, (self.frame[1] - 1) / 2
        if not chroma:
            return np.array([[k, 0, cx - ox * k], [0, k, cy - oy * k]])
        # A chroma sample i sits at luma coordinate 2i + 0.5, on both planes.
        return np.array([[k, 0, (cx - 0.5 + (0.5 - ox) * k) / 2], [0, k, (cy - 0.5 + (0.5 - oy) * k) / 2]])

    def to_frame(self, n: int, x: float, y: float) -> tuple[float, float]:
        """Where canvas point (x, y) shows on frame `n`."""
        k = self.scale(n)
        cx, cy = self.centre(n)
        ox, oy = (self.frame[0] - 1) / 2, (self.frame[1] - 1) / 2
        return ox + (x - cx) / k, oy + (y - cy) / k
