"""Step 3 handler: on each ClipRendered, read the store; when all N clips are in, merge them, once per job.

The store is the lock: whichever merger appends MergeStarted first does the merge. Another delivery that finds the
claim taken does not drop its message: it waits for ClipsMerged, and if the claim outlives its lease (the merger that
made it died, and its own message may already have come back to a merger that stood down) it claims the next attempt
and merges. A healthy merge takes seconds, so a waiter normally just sees it finish."""

from __future__ import annotations

import asyncio
import time

import structlog

from contracts.events import ClipRendered, ClipsMerged, MergeStarted, RecordedEvent, event_id
from services.merger.captions import build_vtt
from services.merger.concat import CONTENT_TYPE, SUFFIX, concat_clips
from services.runtime.context import Runtime

log = structlog.get_logger(__name__)
STEP = 3
SERVICE = "merger"


async def handle_clip_rendered(recorded: RecordedEvent, *, rt: Runtime) -> None:
    event = recorded.event
    if not isinstance(event, ClipRendered):
        return
    job_id = event.job_id
    history = await rt.history(job_id)
    if history.finished or history.has(ClipsMerged):
        return
    clips = {c.index: c for c in history.all(ClipRendered)}
    if len(clips) < event.total_clips:
        return
    claim = await rt.recorder.record(
        MergeStarted(event_id=event_id(job_id, "merge-started"), job_id=job_id, total_clips=event.total_clips)
    )
    if not claim.fresh and not await _take_over_when_abandoned(rt, job_id, event.total_clips):
        return
    work = rt.work_dir(SERVICE, job_id)
    try:
        paths = [await rt.storage.fetch(clips[i].clip_ref, work) for i in sorted(clips)]
        out = work / f"merged{SUFFIX}"
        duration = await concat_clips(paths, out)
        ref = await rt.storage.put_file(f"jobs/{job_id}/merged{SUFFIX}", out, CONTENT_TYPE)
        captions_ref = await _store_captions(rt, job_id, [clips[i] for i in sorted(clips)])
    except Exception as exc:  # even a transient one: a redelivery would wait out this claim's lease first
        rt.clean_work_dir(SERVICE, job_id)  # first: on a full disk its files may keep the failure from being recorded
        await rt.fail_with(job_id, STEP, "Failed to merge video clips", exc, log_event="merger.failed")
        return
    finally:
        rt.clean_work_dir(SERVICE, job_id)
    if not await rt.still_wanted(job_id):
        return
    await rt.recorder.record(
        ClipsMerged(
            event_id=event_id(job_id, "clips-merged"),
            job_id=job_id,
            merged_ref=ref,
            duration_s=round(duration, 3),
            captions_ref=captions_ref,
        )
    )
    log.info("merger.done", job_id=job_id, clips=len(clips), duration=round(duration, 2))


async def _take_over_when_abandoned(rt: Runtime, job_id: str, total_clips: int) -> bool:
    """Wait while another merger holds a live claim. True once this one has claimed an abandoned merge; False when
    the merge got done (or the job ended) meanwhile."""
    lease = rt.settings.merge_lease_seconds
    poll = min(1.0, lease / 4)
    while True:
        history = await rt.history(job_id)
        if history.finished or history.has(ClipsMerged):
            return False
        latest, claimed_at = max(
            (r.event.attempt, r.recorded_at) for r in history.recorded if isinstance(r.event, MergeStarted)
        )
        age = time.time() - claimed_at
        if age >= lease:
            attempt = latest + 1
            log.warning("merger.taking_over", job_id=job_id, attempt=attempt, claim_age_s=round(age, 1))
            claim = await rt.recorder.record(
                MergeStarted(
                    event_id=event_id(job_id, "merge-started", attempt),
                    job_id=job_id,
                    total_clips=total_clips,
                    attempt=attempt,
                )
            )
            if claim.fresh:
                return True
            continue  # another waiter took it over first: wait on its claim
        await asyncio.sleep(min(poll, lease - age))


async def _store_captions(rt: Runtime, job_id: str, clips: list[ClipRendered]) -> str | None:
    """The ad's WebVTT, when the renderer timed the words. Each clip starts where the clips before it end: the
    merged video is their videos back to back, and each ClipRendered.duration_s is its clip's video length."""
    if not any(clip.words for clip in clips):
        return None
    offsets: list[float] = []
    at = 0.0
    for clip in clips:
        offsets.append(at)
        at += clip.duration_s
    vtt = build_vtt([(offset, clip.duration_s, clip.words) for offset, clip in zip(offsets, clips, strict=True)])
    return await rt.storage.put_bytes(f"jobs/{job_id}/captions.vtt", vtt.encode("utf-8"), "text/vtt")
