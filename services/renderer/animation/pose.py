"""What the face does on one frame (`Pose`), and on every frame of a clip (`PoseTrack`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Pose:
    """One frame's face, relative to the photo (all 0 = the photo as it is)."""

    jaw: float = 0.0  # 0..1 mouth opening (lower lip and chin drop); 1 = wide "ah"
    wide: float = 0.0  # -1..1 lip corners outward (+, "ee") or inward (-, with round)
    round: float = 0.0  # 0..1 lips rounded and pushed forward ("oo", "w")
    press: float = 0.0  # 0..1 lips pressed shut (m/b/p): overrides any opening, the photo's own too
    tongue: float = 0.0  # 0..1 tongue tip raised behind the upper teeth (l, th, n, t, d)
    blink_left: float = 0.0  # 0..1, 1 = lid fully shut
    blink_right: float = 0.0
    roll: float = 0.0  # degrees, clockwise on screen
    pitch: float = 0.0  # degrees, + = nod down
    yaw: float = 0.0  # degrees, + = turn to the image's right


NEUTRAL: Final = Pose()
FIELDS: Final = tuple(f.name for f in fields(Pose))
MOUTH_FIELDS: Final = ("jaw", "wide", "round", "press", "tongue")


@dataclass(frozen=True)
class PoseTrack:
    """Every field of `Pose` on every frame: float32 arrays of one length. What the renderer consumes."""

    jaw: Floats
    wide: Floats
    round: Floats
    press: Floats
    tongue: Floats
    blink_left: Floats
    blink_right: Floats
    roll: Floats
    pitch: Floats
    yaw: Floats

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, name)) for name in FIELDS}
        if len(lengths) > 1:
            raise ValueError(f"every field needs one value per frame, got lengths {sorted(lengths)}")
        for name in FIELDS:
            # Stored as float32 copies, read-only, so a track handed to the renderer cannot change under it.
            values = np.array(getattr(self, name), dtype=np.float32)
            values.setflags(write=False)
            object.__setattr__(self, name, values)

    @property
    def frames(self) -> int:
        return len(self.jaw)

    def at(self, n: int) -> Pose:
        return Pose(**{name: float(getattr(self, name)[n]) for name in FIELDS})

    @classmethod
    def neutral(cls, frames: int) -> PoseTrack:
        return cls.build(frames)

    @classmethod
    def build(cls, frames: int, **values: npt.ArrayLike) -> PoseTrack:
        """A track of `frames` frames: the fields given, every other one 0."""
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise TypeError(f"not Pose fields: {sorted(unknown)}")
        arrays = {name: np.asarray(values.get(name, np.zeros(frames)), np.float32) for name in FIELDS}
        return cls(**arrays)
