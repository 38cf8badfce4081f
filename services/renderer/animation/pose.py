"""One frame's face: how open and shaped the mouth is, how shut the eyes are, how the head is turned."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pose:
    jaw: float = 0.0  # 0 closed .. 1 wide open ("ah")
    wide: float = 0.0  # -1 corners in .. +1 spread ("ee")
    round: float = 0.0  # 0 .. 1 rounded, pushed forward ("oo", "w")
    press: float = 0.0  # 0 .. 1 lips pressed shut (m, b, p)
    tongue: float = 0.0  # 0 .. 1 tongue tip raised (l, th, n, t, d)
    blink_left: float = 0.0  # 0 open .. 1 shut (the subject's left eye: on the image's right)
    blink_right: float = 0.0
    roll: float = 0.0  # degrees, clockwise on screen
    pitch: float = 0.0  # degrees, + nods down
    yaw: float = 0.0  # degrees, + turns toward the image's right


NEUTRAL = Pose()
