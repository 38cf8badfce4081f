"""Step 2 handler: one RenderClip → one clip in storage → ClipRendered."""

from __future__ import annotations

import asyncio
import time

import structlog

from contracts.commands import RenderClip
from contracts.events import ClipRendered, event_id
from services.renderer.port import ClipRenderer
from services.runtime.context import Runtime
from services.runtime.errors import TransientError

log = structlog.get_logger(__name__)
STEP = 2
SERVICE = "renderer"


async def handle_render_clip(command: RenderClip, *, rt: Runtime, renderer: ClipRenderer) -> None:
    job_id, index, total = command.job_id, command.clip.index, command.total_clips
    history = await rt.history(job_id)
    if history.finished:
        return  # the job failed or was finished elsewhere: start no new clip
    done = next((e for e in history.all(ClipRendered) if e.index == index), None)
    if done is not None:
        await rt.recorder.record(done)  # a redelivery: announce again, render nothing
        return
    started = time.monotonic()
    work = rt.work_dir(SERVICE, f"{job_id}-{index}")
    try:
        avatar = await rt.storage.fetch(command.avatar_ref, work)
        out = work / f"clip_{index:03d}.mp4"
        try:
            result = await asyncio.wait_for(renderer.render(command, avatar, out), rt.settings.clip_deadline_seconds)
        except TimeoutError:
            raise TransientError(
                f"clip {index}/{total} took longer than {rt.settings.clip_deadline_seconds:g} s"
            ) from None
        ref = await rt.storage.put_file(f"jobs/{job_id}/clips/clip_{index:03d}.mp4", out, "video/mp4")
    except TransientError:
        raise  # another delivery may succeed; the bus retries, then gives up (Runtime.give_up)
    except Exception as exc:
        # Its files go first: on a full disk they may be what keeps the failure from being recorded.
        rt.clean_work_dir(SERVICE, f"{job_id}-{index}")
        failed_to = f"Failed to generate clip {index}/{total}"
        await rt.fail_with(job_id, STEP, failed_to, exc, log_event="renderer.failed", clip=index)
        return
    finally:
        rt.clean_work_dir(SERVICE, f"{job_id}-{index}")
    if not await rt.still_wanted(job_id):
        log.info("renderer.abandoned", job_id=job_id, clip=index)
        return
    await rt.recorder.record(
        ClipRendered(
            event_id=event_id(job_id, "clip-rendered", index),
            job_id=job_id,
            index=index,
            total_clips=total,
            clip_ref=ref,
            duration_s=round(result.duration, 3),
            words=result.words,
        )
    )
    log.info("renderer.clip_done", job_id=job_id, clip=index, total=total, seconds=round(time.monotonic() - started, 2))
