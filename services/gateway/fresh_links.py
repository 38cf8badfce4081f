"""Download links signed at each read, so a finished ad can be fetched for as long as it is stored.

A signed URL expires (ADAGENT_URL_TTL_SECONDS; at most 7 days on Cloud Storage) and, while it lives, is a credential:
JobCompleted (v2) records references only, and every read (the job's status, the job list, a replayed stream, the
WebSocket, a webhook) signs them now, so a link a client receives is valid for the full lifetime from the moment it
got it. A v1 JobCompleted, stored before, also carries the links signed at completion: they are what is sent when
signing fails (the IAM signBlob call of a keyless Cloud Storage set-up, say), and a v1 job completed before the
captions' reference was recorded keeps its recorded captions link. A v2 event has nothing to fall back on: a
signing failure is the read's error."""

from __future__ import annotations

import structlog

from contracts.events import JobCompleted, RecordedEvent
from contracts.job_view import JobView
from contracts.sse import SseEvent
from services.runtime.context import Runtime
from services.runtime.errors import UserFacingError
from services.runtime.failures import public_reason

log = structlog.get_logger(__name__)


async def fresh_links(
    rt: Runtime, final_ref: str, final_url: str | None, captions_ref: str | None, captions_url: str | None
) -> tuple[str, str | None]:
    """(video URL, captions URL), signed now; `final_url`/`captions_url` are a v1 event's recorded links, the
    fallback where signing fails."""
    ttl = rt.settings.url_ttl_seconds
    try:
        video = await rt.storage.signed_url(final_ref, ttl)
        captions = captions_url if captions_ref is None else await rt.storage.signed_url(captions_ref, ttl)
    except Exception as exc:
        if final_url is None:
            raise
        log.warning("links.resign_failed", error_type=type(exc).__name__)
        return final_url, captions_url
    return video, captions


async def job_links(rt: Runtime, job: JobView) -> tuple[str | None, str | None]:
    """A job's (video URL, captions URL) for its status: signed now once it has completed."""
    if job.status != "completed":
        return None, None
    if job.final_ref is not None:
        return await fresh_links(rt, job.final_ref, job.final_video_url, job.captions_ref, job.captions_url)
    # A view made before it kept the references (`adagent rebuild-views` adds them): its events have them.
    history = await rt.store.history(job.job_id)
    completed = next((r.event for r in history if isinstance(r.event, JobCompleted)), None)
    if completed is None:
        return job.final_video_url, job.captions_url
    return await fresh_links(
        rt, completed.final_ref, completed.final_video_url, completed.captions_ref, completed.captions_url
    )


async def with_fresh_links(rt: Runtime, sse: SseEvent, recorded: RecordedEvent) -> SseEvent:
    """The `complete` event with its links signed now; any other event as it is."""
    event = recorded.event
    if not isinstance(event, JobCompleted) or sse.event != "complete":
        return sse
    try:
        video, captions = await fresh_links(
            rt, event.final_ref, event.final_video_url, event.captions_ref, event.captions_url
        )
    except UserFacingError as exc:
        # A stream already under way has no status to answer with (a status read answers 502/503): the reason is
        # logged, once, where the operator looks.
        public_reason(exc, "links.sign_failed", job_id=event.job_id)
        raise
    data = {**sse.data, "final_video_url": video}
    if captions is not None:
        data["captions_url"] = captions
    return SseEvent(event=sse.event, id=sse.id, data=data)
