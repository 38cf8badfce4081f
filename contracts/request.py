"""The seed's request body for `POST /api/ad-agent/create-stream`."""

from __future__ import annotations

import msgspec

from contracts.formats import AspectRatio, Resolution


class StreamAdRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Required: `script`, `character_image` (a data URI). The rest has the seed's defaults."""

    script: str
    character_image: str
    character_name: str = "character"
    voice_id: str | None = None
    aspect_ratio: AspectRatio = "16:9"
    resolution: Resolution = "720p"
