"""`GET /files/{key}`: objects of local storage, behind HMAC-signed, expiring URLs."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path

from litestar import Request, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema
from litestar.params import FromPath, FromQuery
from litestar.response import File, Response, Stream

from services.gateway.byte_ranges import ByteRange, Unsatisfiable, parse_range
from services.gateway.openapi import bad_parameter, error_example, error_response, operation_class
from services.runtime.storage.local import FILES_ROUTE, LocalStorage


@get(
    f"{FILES_ROUTE}/{{key:path}}",
    summary="Download a stored object with a signed, expiring URL",
    description="The URLs come from the API (e.g. `final_video_url`), signed with `expires` (a Unix time) and "
    "`signature`: no other credential is needed, and a URL stops working when it expires. A `Range: bytes=…` "
    "header (one range) gets 206 with that part, so a video player can seek.",
    tags=["Files"],
    responses={
        400: bad_parameter("GET /files/jobs/ad_1795885518756927/avatar.png?expires=soon"),
        403: error_response(
            "The signature is missing or wrong, or the link has expired",
            error_example(403, "the link is invalid or has expired"),
        ),
        404: error_response("No such object", error_example(404, "Not Found")),
    },
    operation_class=operation_class(
        responses={
            "200": OpenAPIResponse(
                description="The object, inline, with its media type (e.g. `video/mp4` for a finished ad)",
                content={"*/*": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))},
            ),
            "206": OpenAPIResponse(
                description="The byte range the `Range` header asked for, with `Content-Range`",
                content={"*/*": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))},
            ),
            "416": OpenAPIResponse(
                description="The range lies beyond the object's end (`Content-Range: bytes */SIZE`)"
            ),
        }
    ),
)
async def download(
    key: FromPath[str],
    state: State,
    request: Request,  # type: ignore[type-arg]
    expires: FromQuery[int] = 0,
    signature: FromQuery[str] = "",
) -> File | Stream | Response[bytes]:
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
    size = (await asyncio.to_thread(path.stat)).st_size
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return Response(b"", status_code=416, headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
    if wanted is None:
        return File(path, filename=path.name, content_disposition_type="inline", headers={"Accept-Ranges": "bytes"})
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Stream(
        _read(path, wanted),
        status_code=206,
        media_type=media_type,
        headers={
            "Content-Range": wanted.content_range(size),
            "Content-Length": str(wanted.length),
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{path.name}"',
        },
    )


async def _read(path: Path, wanted: ByteRange, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    with await asyncio.to_thread(path.open, "rb") as f:
        await asyncio.to_thread(f.seek, wanted.start)
        left = wanted.length
        while left > 0:
            data = await asyncio.to_thread(f.read, min(chunk, left))
            if not data:
                return
            left -= len(data)
            yield data


ROUTES = [download]
