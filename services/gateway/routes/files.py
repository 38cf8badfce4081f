"""`GET /files/{key}`: objects of local storage, behind HMAC-signed, expiring URLs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import File

from services.runtime.storage.local import FILES_ROUTE, LocalStorage


@get(f"{FILES_ROUTE}/{{key:path}}", summary="Download a stored object with a signed, expiring URL", tags=["Files"])
async def download(
    key: FromPath[str],
    state: State,
    expires: FromQuery[int] = 0,
    signature: FromQuery[str] = "",
) -> File:
    storage = state.runtime.storage
    key = key.lstrip("/")
    if not isinstance(storage, LocalStorage):
        raise NotFoundException()
    if not signature or not storage.verify(key, expires, signature):
        raise PermissionDeniedException("the link is invalid or has expired")
    try:
        path: Path = storage.path_for(key)
    except ValueError:
        raise PermissionDeniedException("the link is invalid or has expired") from None
    if not await asyncio.to_thread(path.is_file):
        raise NotFoundException()
    return File(path, filename=path.name, content_disposition_type="inline")


ROUTES = [download]
