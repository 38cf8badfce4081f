"""What a voice provider does: take the merged cut, give back the same picture with an enhanced voice."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class VoiceEnhancer(Protocol):
    name: str  # the provider, shown to the user in the step 4 message

    async def enhance(self, merged: Path, out: Path, voice_id: str | None) -> float | None:
        """Write the enhanced MP4 to `out`; return the measured integrated loudness (LUFS) when known."""
        ...
