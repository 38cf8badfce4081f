"""`POST /api/ad-agent/create-stream`: the seed's endpoint: create a job and stream its progress as SSE."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from services.gateway.errors import RequestError
from services.gateway.jobs import QueueFull, create_job
from services.gateway.streaming import sse_messages
from services.gateway.validation import parse_request
from services.runtime.context import Runtime

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@post(
    "/api/ad-agent/create-stream",
    status_code=200,
    summary="Create a video ad and stream its progress (SSE)",
    tags=["AI Ad Agent"],
)
async def create_stream(request: Request[Any, Any, Any], state: State, user: NamedDependency[str]) -> ServerSentEvent:
    rt: Runtime = state.runtime
    body = await request.body()
    valid = await asyncio.to_thread(parse_request, body, rt.settings)
    try:
        job_id, _ = await create_job(rt, valid, user)
    except QueueFull as full:
        raise RequestError(None, str(full), 429, headers={"Retry-After": str(full.retry_after)}) from None
    return ServerSentEvent(sse_messages(state.journal, job_id), headers={**SSE_HEADERS, "X-Job-Id": job_id})


ROUTES = [create_stream]
