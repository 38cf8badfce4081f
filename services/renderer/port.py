"""What a clip provider does: render one clip of the character speaking its line, to a local MP4 file."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from contracts.commands import RenderClip


class ClipRenderer(Protocol):
    async def render(self, command: RenderClip, avatar: Path, out: Path) -> float:
        """Write an H.264 + AAC MP4 to `out`; return its duration in seconds."""
        ...
