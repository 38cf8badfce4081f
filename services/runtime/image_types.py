"""What kind of image a file holds, from its first bytes: providers want the media type beside the bytes."""

from __future__ import annotations


def image_mime_type(data: bytes) -> str | None:
    """`image/png`, `image/jpeg` or `image/webp` (the avatar formats the gateway accepts), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
