"""The Litestar application: create-stream, health, and signed downloads from local storage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import File, Response, ServerSentEvent

from services.gateway.errors import RequestError, http_error_handler, request_error_handler
from services.gateway.jobs import create_job
from services.gateway.journal import Journal
from services.gateway.streaming import sse_messages
from services.gateway.validation import parse_request
from services.runtime.context import Runtime
from services.runtime.storage.local import FILES_ROUTE, LocalStorage

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@post("/api/ad-agent/create-stream", status_code=200, summary="Create a video ad and stream its progress (SSE)")
async def create_stream(request: Request[Any, Any, Any], state: State) -> ServerSentEvent:
    rt: Runtime = state.runtime
    body = await request.body()
    valid = await asyncio.to_thread(parse_request, body, rt.settings)
    job_id = await create_job(rt, valid)
    return ServerSentEvent(sse_messages(state.journal, job_id), headers={**SSE_HEADERS, "X-Job-Id": job_id})


@get("/health", summary="200 when the stack is ready to take jobs")
async def health(state: State) -> Response[dict[str, str]]:
    if state.get("ready"):
        return Response({"status": "ok"}, status_code=200)
    return Response({"status": "starting"}, status_code=503)


@get(f"{FILES_ROUTE}/{{key:path}}", summary="Download a stored object with a signed, expiring URL")
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


def create_app(rt: Runtime, journal: Journal) -> Litestar:
    state = State({"runtime": rt, "journal": journal, "ready": False})
    # Room for the largest allowed avatar in base64 plus the rest of the body.
    max_body = rt.settings.max_image_bytes * 4 // 3 + 1_000_000
    return Litestar(
        route_handlers=[create_stream, health, download],
        state=state,
        exception_handlers={RequestError: request_error_handler, HTTPException: http_error_handler},
        request_max_body_size=max_body,
        logging_config=None,  # logging is configured once, with secret scrubbing, by services.runtime.logging
    )
