"""What object storage offers the services. A reference is a URI (`file://…` locally, `gs://…` on GCS)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ObjectStorage(Protocol):
    async def put_file(self, key: str, src: Path, content_type: str) -> str:
        """Store the file under `key`; return its reference."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> str: ...

    async def fetch(self, ref: str, dest_dir: Path) -> Path:
        """A local path holding the object's bytes: downloaded into `dest_dir`, or the object itself when local."""
        ...

    async def signed_url(self, ref: str, ttl_seconds: int) -> str:
        """A URL anyone holding it may GET until it expires."""
        ...
