"""Create and cancel jobs: the gateway's writes. Reads are projections (the store's job view)."""

from __future__ import annotations

import secrets

import structlog

from contracts.events import JobCancelled, JobRequested, event_id
from contracts.job_ids import new_job_id
from contracts.job_view import JobView
from services.gateway.errors import RequestError
from services.gateway.validation import ValidRequest
from services.runtime.context import Runtime
from services.runtime.errors import out_of_disk_space
from services.runtime.failures import DISK_FULL_REQUEST
from services.runtime.store.port import IdempotencyConflict

log = structlog.get_logger(__name__)

QUEUE_FULL_RETRY_AFTER = 30


class QueueFull(Exception):
    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(f"you already have {queued} jobs waiting; the limit is {limit}")
        self.retry_after = QUEUE_FULL_RETRY_AFTER


def _same_request(existing: JobView, valid: ValidRequest) -> str:
    if existing.body_sha256 != valid.body_sha256:
        raise RequestError(
            "Idempotency-Key", f"was used for a different request (job {existing.job_id}); use a new key", 409
        )
    return existing.job_id


async def create_job(
    rt: Runtime, valid: ValidRequest, owner: str, *, idempotency_key: str | None = None
) -> tuple[str, bool]:
    """The job id, and whether it was created now (False: the same Idempotency-Key and body came before).
    On a full disk (the avatar or the event cannot be written) a 507 that says so, logged at ERROR."""
    try:
        return await _create_job(rt, valid, owner, idempotency_key=idempotency_key)
    except Exception as exc:
        if not out_of_disk_space(exc):
            raise
        log.error("gateway.create_out_of_disk_space", owner=owner, exc_info=exc)
        raise RequestError(None, DISK_FULL_REQUEST, 507) from None


async def _create_job(
    rt: Runtime, valid: ValidRequest, owner: str, *, idempotency_key: str | None = None
) -> tuple[str, bool]:
    if idempotency_key:
        existing = await rt.store.job_by_idempotency_key(owner, idempotency_key)
        if existing is not None:
            return _same_request(existing, valid), False
    queued = sum(1 for job in await rt.store.queued_jobs() if job.owner == owner)
    if queued >= rt.settings.max_queued_per_user:
        raise QueueFull(queued, rt.settings.max_queued_per_user)
    req = valid.request
    for _ in range(10):
        job_id = new_job_id()
        # A random suffix: a job id drawn twice by two gateways must not overwrite the other's avatar.
        avatar_ref = await rt.storage.put_bytes(
            f"jobs/{job_id}/avatar-{secrets.token_hex(4)}.png", valid.avatar_png, "image/png"
        )
        try:
            recorded = await rt.recorder.record(
                JobRequested(
                    event_id=event_id(job_id, "requested"),
                    job_id=job_id,
                    script=req.script,
                    avatar_ref=avatar_ref,
                    character_name=req.character_name,
                    voice_id=req.voice_id,
                    aspect_ratio=req.aspect_ratio,
                    resolution=req.resolution,
                    owner=owner,
                    priority=valid.priority,
                    webhook_url=valid.webhook_url,
                    webhook_events=valid.webhook_events,
                    idempotency_key=idempotency_key,
                    body_sha256=valid.body_sha256,
                )
            )
        except IdempotencyConflict as conflict:  # the same key raced in from another request
            return _same_request(conflict.existing, valid), False
        if recorded.fresh:
            return job_id, True
    raise RuntimeError("could not draw a unique job id")


async def cancel_job(rt: Runtime, job: JobView, by: str) -> JobView:
    """Idempotent: a finished job stays as it is; otherwise JobCancelled ends it (no new clip starts, work in
    flight is dropped at its next safe point)."""
    if not job.finished:
        await rt.recorder.record(JobCancelled(event_id=event_id(job.job_id, "cancelled"), job_id=job.job_id, by=by))
    return await rt.store.job(job.job_id) or job
