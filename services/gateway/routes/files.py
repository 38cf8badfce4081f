"""`GET /files/{key}`: objects of local storage, behind HMAC-signed, expiring URLs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema
from litestar.params import FromPath, FromQuery
from litestar.response import File

from services.gateway.openapi import bad_parameter, error_example, error_response, operation_class
from services.runtime.storage.local import FILES_ROUTE, LocalStorage


@get(
    f"{FILES_ROUTE}/{{key:path}}",
    summary="Download a stored object with a signed, expiring URL",
    description="The URLs come from the API (e.g. `final_video_url`), signed with `expires` (a Unix time) and "
    "`signature`: no other credential is needed, and a URL stops working when it expires.",
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
            )
        }
    ),
)
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
