"""What a clip provider does: render one clip of the character speaking its line, to a local MP4 file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from contracts.commands import RenderClip
from contracts.events import WordTiming


@dataclass(frozen=True)
class RenderedClip:
    duration: float  # seconds
    words: list[WordTiming] = field(default_factory=list)  # when each word is heard, from the clip's start


class ClipRenderer(Protocol):
    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        """Write an H.264 + AAC MP4 to `out`; return its duration and word timings."""
        ...


@runtime_checkable
class RemoteClipRenderer(ClipRenderer, Protocol):
    """A provider whose clips are made elsewhere (Veo): most of a clip's time is spent waiting on it, so the service
    takes as many clips at once as it says, not as many as this machine has cores for."""

    @property
    def clips_at_once(self) -> int: ...
