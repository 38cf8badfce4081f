"""Output formats the product accepts: aspect ratio and resolution, and the pixel size they make."""

from __future__ import annotations

from typing import Final, Literal

AspectRatio = Literal["16:9", "9:16", "1:1"]
Resolution = Literal["720p", "1080p"]

ASPECT_RATIOS: Final[tuple[str, ...]] = ("16:9", "9:16", "1:1")
RESOLUTIONS: Final[tuple[str, ...]] = ("720p", "1080p")

_SHORT_SIDE: Final[dict[str, int]] = {"720p": 720, "1080p": 1080}


def frame_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height in pixels; the resolution names the short side, as video people use it."""
    short = _SHORT_SIDE[resolution]
    long = short * 16 // 9
    if aspect_ratio == "16:9":
        return long, short
    if aspect_ratio == "9:16":
        return short, long
    if aspect_ratio == "1:1":
        return short, short
    raise ValueError(f"unknown aspect ratio {aspect_ratio!r}")
