"""Create a job: store the avatar, then record JobRequested (which publishes it to the prompter)."""

from __future__ import annotations

import secrets

from contracts.events import JobRequested, event_id
from contracts.job_ids import new_job_id
from services.gateway.validation import ValidRequest
from services.runtime.context import Runtime


async def create_job(rt: Runtime, valid: ValidRequest) -> str:
    req = valid.request
    for _ in range(10):
        job_id = new_job_id()
        # A random suffix: a job id drawn twice by two gateways must not overwrite the other's avatar.
        avatar_ref = await rt.storage.put_bytes(
            f"jobs/{job_id}/avatar-{secrets.token_hex(4)}.png", valid.avatar_png, "image/png"
        )
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
            )
        )
        if recorded.fresh:
            return job_id
    raise RuntimeError("could not draw a unique job id")
