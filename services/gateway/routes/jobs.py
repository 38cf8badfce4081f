"""Jobs that outlive the connection: create (202), list, status, events (SSE, resumable), cancel, WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from litestar import Request, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, WebSocketDisconnect
from litestar.params import FromPath, FromQuery, HeaderParameter
from litestar.response import Response, ServerSentEvent

from contracts.api import JobCreated, JobList, JobState
from contracts.job_view import JobView
from contracts.sse import SseProjection
from services.gateway.auth import current_user_or_stream_token
from services.gateway.errors import RequestError
from services.gateway.jobs import QueueFull, cancel_job, create_job
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
    job = await rt.store.job(job_id)
    if job is None or job.owner != user:
        raise NotFoundException(f"no job {job_id}")
    return job


def _events_url(state: State, job_id: str, user: str) -> str:
    token: str = state.auth.issue_stream_token(user, job_id)
    return f"{BASE}/jobs/{job_id}/events?token={token}"


async def _state(state: State, job: JobView, user: str) -> JobState:
    rt: Runtime = state.runtime
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
        final_video_url=job.final_video_url,
        error=job.error,
        events_url=_events_url(state, job.job_id, user),
    )


@post(f"{BASE}/create", status_code=202, summary="Create a video ad job (answers at once)", tags=["Jobs"])
async def create(
    request: Request[Any, Any, Any],
    state: State,
    user: NamedDependency[str],
    idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
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


@get(f"{BASE}/jobs", summary="Your jobs, newest first", tags=["Jobs"])
async def list_jobs(
    state: State, user: NamedDependency[str], cursor: FromQuery[str | None] = None, limit: FromQuery[int] = 20
) -> JobList:
    if not 1 <= limit <= MAX_PAGE:
        raise RequestError("limit", f"must be between 1 and {MAX_PAGE}")
    jobs = await state.runtime.store.jobs(user, after=cursor, limit=limit + 1)
    page = jobs[:limit]
    return JobList(
        jobs=[await _state(state, job, user) for job in page],
        next_cursor=page[-1].job_id if len(jobs) > limit else None,
    )


@get(f"{BASE}/jobs/{{job_id:str}}", summary="One job's status", tags=["Jobs"])
async def get_job(state: State, user: NamedDependency[str], job_id: FromPath[str]) -> JobState:
    return await _state(state, await _own_job(state, job_id, user), user)


@post(f"{BASE}/jobs/{{job_id:str}}/cancel", status_code=200, summary="Cancel a job (idempotent)", tags=["Jobs"])
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
    tags=["Jobs"],
    dependencies={"user": Provide(current_user_or_stream_token)},
)
async def job_events(
    state: State,
    user: NamedDependency[str],
    job_id: FromPath[str],
    last_event_id_header: Annotated[str | None, HeaderParameter(name="Last-Event-ID")] = None,
    last_event_id: FromQuery[int | None] = None,
) -> Response[None] | ServerSentEvent:
    job = await _own_job(state, job_id, user)
    after = _resume_point(last_event_id_header, last_event_id)
    if job.finished and after >= (job.terminal_seq or 0):
        # The client has everything: 204 tells a browser's EventSource not to reconnect.
        return Response(None, status_code=204)
    return ServerSentEvent(sse_messages(state.journal, job_id, last_event_id=after), headers=SSE_HEADERS)


@websocket(f"{BASE}/jobs/{{job_id:str}}/ws", dependencies={"user": Provide(current_user_or_stream_token)})
async def job_socket(socket: WebSocket[Any, Any, Any], user: NamedDependency[str], job_id: FromPath[str]) -> None:
    state = socket.app.state
    job = await state.runtime.store.job(job_id)
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
            await socket.send_json({"event": sse.event, "id": sse.id, "data": sse.data})

    async def receive_commands() -> None:
        while True:
            message = await socket.receive_text()
            try:
                command = json.loads(message)
            except ValueError:
                await socket.send_json({"event": "invalid", "data": {"message": 'send JSON like {"action": "cancel"}'}})
                continue
            if isinstance(command, dict) and command.get("action") == "cancel":
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
