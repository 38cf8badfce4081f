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
from services.gateway.openapi import (
    BEARER_ONLY,
    RETRY_AFTER,
    WWW_AUTHENTICATE,
    create_errors,
    header,
    operation_class,
    sse_response,
)
from services.gateway.request_schema import STREAM_BODY, body_ref
from services.gateway.streaming import sse_messages
from services.gateway.validation import parse_request
from services.runtime.context import Runtime

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@post(
    "/api/ad-agent/create-stream",
    status_code=200,
    summary="Create a video ad and stream its progress (SSE)",
    description=(
        "The seed's endpoint. The body is validated first (errors are JSON, before any stream starts); then the "
        "job is created and the answer is its progress as Server-Sent Events, from `queued` to `complete`, `error` "
        "or `cancelled`. The `X-Job-Id` header names the job: dropping the connection does not stop it, and "
        "`GET /api/ad-agent/jobs/{job_id}/events` resumes the stream."
    ),
    tags=["AI Ad Agent"],
    # The seed links its docs at /docs#/AI%20Ad%20Agent/create_ad_stream_api_ad_agent_create_stream_post: Swagger UI's
    # deep link is the tag and the operationId, so this name (FastAPI's for the seed's route) makes that link work.
    operation_id="create_ad_stream_api_ad_agent_create_stream_post",
    security=BEARER_ONLY,
    responses=create_errors(with_job_fields=False),
    operation_class=operation_class(
        request_body=body_ref(STREAM_BODY),
        responses={"200": sse_response("The job's progress, live, until it ends")},
        headers={
            "200": {"X-Job-Id": header("The job's id, e.g. `ad_1795885518756927`.")},
            "401": WWW_AUTHENTICATE,
            "429": RETRY_AFTER,
        },
    ),
)
async def create_stream(request: Request[Any, Any, Any], state: State, user: NamedDependency[str]) -> ServerSentEvent:
    rt: Runtime = state.runtime
    body = await request.body()
    valid = await asyncio.to_thread(parse_request, body, rt.settings, job_fields=False)
    try:
        job_id, _ = await create_job(rt, valid, user)
    except QueueFull as full:
        raise RequestError(None, str(full), 429, headers={"Retry-After": str(full.retry_after)}) from None
    messages = sse_messages(state.runtime, state.journal, job_id)
    return ServerSentEvent(messages, headers={**SSE_HEADERS, "X-Job-Id": job_id})


ROUTES = [create_stream]
