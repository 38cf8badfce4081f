"""Jobs that outlive the connection: create (202), list, status, events (SSE, resumable), cancel, WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from litestar import Request, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, WebSocketDisconnect
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Response, ServerSentEvent

from contracts.api import JobCreated, JobList, JobState
from contracts.job_ids import JOB_ID_PATTERN, is_job_id
from contracts.job_view import JobView
from contracts.sse import SseProjection
from services.gateway.auth import current_user_or_stream_token
from services.gateway.errors import RequestError
from services.gateway.fresh_links import job_links, with_fresh_links
from services.gateway.jobs import QueueFull, cancel_job, create_job
from services.gateway.json_body import json_object
from services.gateway.openapi import (
    BEARER_ONLY,
    BEARER_OR_STREAM_TOKEN,
    EXAMPLE_JOB_CANCELLED,
    EXAMPLE_JOB_CREATED,
    EXAMPLE_JOB_DONE,
    EXAMPLE_JOB_QUEUED,
    EXAMPLE_JOB_STATE,
    JOB_NOT_FOUND,
    RETRY_AFTER,
    UNAUTHORIZED,
    UNAUTHORIZED_STREAM,
    WRONG_CREDENTIALS_THROTTLED,
    WWW_AUTHENTICATE,
    bad_parameter,
    create_errors,
    error_example,
    error_response,
    header,
    json_response,
    operation_class,
    sse_response,
    string_param,
)
from services.gateway.request_schema import CREATE_BODY, body_ref
from services.gateway.routes.stream import SSE_HEADERS
from services.gateway.scheduler import queue_position
from services.gateway.streaming import sse_messages
from services.gateway.validation import parse_request
from services.runtime.context import Runtime

BASE = "/api/ad-agent"
MAX_PAGE = 100


async def _own_job(state: State, job_id: str, user: str) -> JobView:
    """Another user's job answers exactly as a job that does not exist."""
    rt: Runtime = state.runtime
    # An id not of the form job ids have names no job, and is not handed to the store (PostgreSQL refuses a NUL).
    job = await rt.store.job(job_id) if is_job_id(job_id) else None
    if job is None or job.owner != user:
        raise NotFoundException(f"no job {job_id}")
    return job


def _events_url(state: State, job_id: str, user: str) -> str:
    token: str = state.auth.issue_stream_token(user, job_id)
    return f"{BASE}/jobs/{job_id}/events?token={token}"


async def _state(state: State, job: JobView, user: str) -> JobState:
    rt: Runtime = state.runtime
    video, captions = await job_links(rt, job)
    return JobState(
        job_id=job.job_id,
        status=job.status,
        step=job.step,
        progress=job.progress,
        clips_done=job.clips_done,
        total_clips=job.total_clips,
        priority=job.priority,
        created_at=job.created_at,
        updated_at=job.updated_at,
        queue_position=await queue_position(rt, job.job_id) if job.status == "queued" else None,
        final_video_url=video,
        captions_url=captions,
        error=job.error,
        events_url=_events_url(state, job.job_id, user),
    )


_UNAUTHORIZED_HEADERS = {"401": WWW_AUTHENTICATE, "429": RETRY_AFTER}


@post(
    f"{BASE}/create",
    status_code=202,
    summary="Create a video ad job (answers at once)",
    description=(
        "Validates the body as `create-stream` does, creates the job and answers 202 with its URLs: poll "
        "`status_url`, follow `events_url` (SSE; it carries a stream token, so a browser's `EventSource` can use "
        "it as is) or open `websocket_url`. Beyond the seed's fields: `priority`, `webhook_url` and "
        "`webhook_events`. With an `Idempotency-Key`, sending the same body again answers 200 with the same job; "
        "a different body with the same key answers 409."
    ),
    tags=["Jobs"],
    security=BEARER_ONLY,
    responses={
        202: json_response(JobCreated, "The job is created (`Location` is its status URL)", queued=EXAMPLE_JOB_CREATED),
        200: json_response(
            JobCreated,
            "The same `Idempotency-Key` and body came before: the job made then",
            replayed=EXAMPLE_JOB_CREATED,
        ),
        **create_errors(with_job_fields=True),
    },
    operation_class=operation_class(
        request_body=body_ref(CREATE_BODY),
        headers={
            "200": {"Location": header("The job's status URL.")},
            "202": {"Location": header("The job's status URL.")},
            "401": WWW_AUTHENTICATE,
            "429": RETRY_AFTER,
        },
    ),
)
async def create(
    request: Request[Any, Any, Any],
    state: State,
    user: NamedDependency[str],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            description="Any 1 to 255 characters, e.g. a UUID: the same key and body give the same job.",
            schema_extra=string_param(min_length=1, max_length=255),
        ),
    ] = None,
) -> Response[JobCreated]:
    rt: Runtime = state.runtime
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 255):
        raise RequestError("Idempotency-Key", "must be 1 to 255 characters", 400)
    valid = await asyncio.to_thread(parse_request, await request.body(), rt.settings)
    try:
        job_id, created = await create_job(rt, valid, user, idempotency_key=idempotency_key)
    except QueueFull as full:
        raise RequestError(None, str(full), 429, headers={"Retry-After": str(full.retry_after)}) from None
    job = await rt.store.job(job_id)
    assert job is not None
    body = JobCreated(
        job_id=job_id,
        status=job.status,
        status_url=f"{BASE}/jobs/{job_id}",
        events_url=_events_url(state, job_id, user),
        websocket_url=f"{BASE}/jobs/{job_id}/ws",
    )
    return Response(body, status_code=202 if created else 200, headers={"Location": body.status_url})


@get(
    f"{BASE}/jobs",
    summary="Your jobs, newest first",
    description="A page of at most `limit` jobs; pass `next_cursor` as `cursor` for the next page (null: no more).",
    tags=["Jobs"],
    security=BEARER_ONLY,
    responses={
        200: json_response(
            JobList,
            "A page of your jobs",
            one_page={"jobs": [EXAMPLE_JOB_STATE, EXAMPLE_JOB_DONE], "next_cursor": "ad_1795885518756927"},
            last_page={"jobs": [], "next_cursor": None},
        ),
        400: bad_parameter(f"GET {BASE}/jobs?limit=ten"),
        401: UNAUTHORIZED,
        429: WRONG_CREDENTIALS_THROTTLED,
        422: error_response(
            "`limit` is out of range", error_example(422, "must be between 1 and 100", "limit", summary="limit=0")
        ),
    },
    operation_class=operation_class(headers=_UNAUTHORIZED_HEADERS),
)
async def list_jobs(
    state: State,
    user: NamedDependency[str],
    cursor: Annotated[
        str | None,
        QueryParameter(
            description="The `next_cursor` of the previous page (a job id); leave out for the first.",
            schema_extra=string_param(pattern=JOB_ID_PATTERN.pattern),
        ),
    ] = None,
    limit: Annotated[
        int, QueryParameter(description="Jobs per page.", schema_extra={"minimum": 1, "maximum": MAX_PAGE})
    ] = 20,
) -> JobList:
    if not 1 <= limit <= MAX_PAGE:
        raise RequestError("limit", f"must be between 1 and {MAX_PAGE}")
    if cursor is not None and not is_job_id(cursor):
        raise RequestError("cursor", "is not a next_cursor from this API (a job id such as ad_1795885518756927)")
    jobs = await state.runtime.store.jobs(user, after=cursor, limit=limit + 1)
    page = jobs[:limit]
    return JobList(
        jobs=[await _state(state, job, user) for job in page],
        next_cursor=page[-1].job_id if len(jobs) > limit else None,
    )


@get(
    f"{BASE}/jobs/{{job_id:str}}",
    summary="One job's status",
    description="Where the job is: status, step (0 while queued, then 1 to 5), progress (0 to 100), clips, its "
    "place in the queue while queued, and the video's URL once completed. `events_url` carries a fresh stream token.",
    tags=["Jobs"],
    security=BEARER_ONLY,
    responses={
        200: json_response(
            JobState, "The job", running=EXAMPLE_JOB_STATE, queued=EXAMPLE_JOB_QUEUED, completed=EXAMPLE_JOB_DONE
        ),
        400: bad_parameter(f"GET {BASE}/jobs/ad_1795885518756927", "A malformed request"),
        401: UNAUTHORIZED,
        429: WRONG_CREDENTIALS_THROTTLED,
        404: JOB_NOT_FOUND,
    },
    operation_class=operation_class(headers=_UNAUTHORIZED_HEADERS),
)
async def get_job(state: State, user: NamedDependency[str], job_id: FromPath[str]) -> JobState:
    return await _state(state, await _own_job(state, job_id, user), user)


@post(
    f"{BASE}/jobs/{{job_id:str}}/cancel",
    status_code=200,
    summary="Cancel a job (idempotent)",
    description="A queued or running job ends with `cancelled` (no new clip starts; work in flight is dropped). A "
    "finished job stays as it is. Either way the answer is the job's status.",
    tags=["Jobs"],
    security=BEARER_ONLY,
    responses={
        200: json_response(JobState, "The job, after the cancel", cancelled=EXAMPLE_JOB_CANCELLED),
        400: bad_parameter(f"POST {BASE}/jobs/ad_1795885518756927/cancel", "A malformed request"),
        401: UNAUTHORIZED,
        429: WRONG_CREDENTIALS_THROTTLED,
        404: JOB_NOT_FOUND,
    },
    operation_class=operation_class(headers=_UNAUTHORIZED_HEADERS),
)
async def cancel(state: State, user: NamedDependency[str], job_id: FromPath[str]) -> JobState:
    job = await cancel_job(state.runtime, await _own_job(state, job_id, user), user)
    return await _state(state, job, user)


def _resume_point(last_event_id_header: str | None, last_event_id: int | None) -> int:
    raw = last_event_id_header if last_event_id_header is not None else last_event_id
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise RequestError("Last-Event-ID", "must be a whole number (an SSE id from this stream)", 400) from None
    if value < 0:
        raise RequestError("Last-Event-ID", "must not be negative", 400)
    return value


@get(
    f"{BASE}/jobs/{{job_id:str}}/events",
    summary="The job's events as SSE, from the start or after Last-Event-ID, then live",
    description=(
        "The same events as `create-stream`, replayed from the start (or after `Last-Event-ID`, as a header or a "
        "query parameter), then live until the job ends. A browser's `EventSource` resumes by itself after a "
        "dropped connection. Once the client has every event of a finished job the answer is 204, which tells "
        "`EventSource` to stop reconnecting. Authenticate with a bearer token or API key, or with `?token=` (the "
        "stream token that `events_url` carries).\n\n"
        "The same events also come over a WebSocket at `/api/ad-agent/jobs/{job_id}/ws` (same credentials; "
        'messages `{"event", "id", "data"}`; send `{"action": "cancel"}` to cancel the job).'
    ),
    tags=["Jobs"],
    security=BEARER_OR_STREAM_TOKEN,
    dependencies={"user": Provide(current_user_or_stream_token)},
    responses={
        204: ResponseSpec(None, description="The job is finished and the client has all its events"),
        400: error_response(
            "`Last-Event-ID` is not a whole number",
            error_example(400, "must be a whole number (an SSE id from this stream)", "Last-Event-ID"),
            error_example(400, "must not be negative", "Last-Event-ID"),
            error_example(
                400,
                "Validation failed for GET /api/ad-agent/jobs/ad_1795885518756927/events?last_event_id=x",
                summary="last_event_id is not a number",
            ),
        ),
        401: UNAUTHORIZED_STREAM,
        429: WRONG_CREDENTIALS_THROTTLED,
        404: JOB_NOT_FOUND,
    },
    operation_class=operation_class(
        responses={"200": sse_response("The job's events, from the resume point, then live until it ends")},
        headers=_UNAUTHORIZED_HEADERS,
    ),
)
async def job_events(
    state: State,
    user: NamedDependency[str],
    job_id: FromPath[str],
    last_event_id_header: Annotated[
        str | None,
        HeaderParameter(
            name="Last-Event-ID",
            description="Resume after this event id (what `EventSource` sends by itself when it reconnects).",
            schema_extra=string_param(pattern=r"^[0-9]*$"),
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        QueryParameter(
            description="The same as `Last-Event-ID`, for clients that cannot send headers (the header wins).",
            schema_extra={"one_of": None, "type": OpenAPIType.INTEGER, "minimum": 0},
        ),
    ] = None,
) -> Response[None] | ServerSentEvent:
    job = await _own_job(state, job_id, user)
    after = _resume_point(last_event_id_header, last_event_id)
    if job.finished and after >= (job.terminal_seq or 0):
        # The client has everything: 204 tells a browser's EventSource not to reconnect.
        return Response(None, status_code=204)
    return ServerSentEvent(sse_messages(state.runtime, state.journal, job_id, last_event_id=after), headers=SSE_HEADERS)


@websocket(f"{BASE}/jobs/{{job_id:str}}/ws", dependencies={"user": Provide(current_user_or_stream_token)})
async def job_socket(socket: WebSocket[Any, Any, Any], user: NamedDependency[str], job_id: FromPath[str]) -> None:
    state = socket.app.state
    job = await state.runtime.store.job(job_id) if is_job_id(job_id) else None
    if job is None or job.owner != user:
        await socket.close(code=4404, reason="no such job")
        return
    raw_after = socket.query_params.get("last_event_id") or "0"
    after = int(raw_after) if raw_after.isdigit() else 0
    await socket.accept()

    async def send_events() -> None:
        projection = SseProjection()
        async for recorded in state.journal.follow(job_id, 0, idle_seconds=15.0):
            if recorded is None:
                await socket.send_json({"event": "keep-alive"})
                continue
            sse = projection.apply(recorded)
            if sse is None or sse.id <= after:
                continue
            sse = await with_fresh_links(state.runtime, sse, recorded)
            await socket.send_json({"event": sse.event, "id": sse.id, "data": sse.data})

    async def receive_commands() -> None:
        while True:
            message = await socket.receive_text()
            try:
                command = json_object(message, "the message")
            except RequestError as bad:
                hint = f'{bad.message}: send JSON like {{"action": "cancel"}}'
                await socket.send_json({"event": "invalid", "data": {"message": hint}})
                continue
            if command.get("action") == "cancel":
                current = await state.runtime.store.job(job_id)
                if current is not None:
                    await cancel_job(state.runtime, current, user)
            else:
                await socket.send_json({"event": "invalid", "data": {"message": "unknown action; try cancel"}})

    sender = asyncio.create_task(send_events())
    receiver = asyncio.create_task(receive_commands())
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
        with contextlib.suppress(Exception):
            await socket.close(code=1000)


ROUTES = [create, list_jobs, get_job, cancel, job_events, job_socket]
