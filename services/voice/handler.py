"""Steps 4 and 5: enhance the voice of the merged cut, then store the final MP4 and sign its URL."""

from __future__ import annotations

from pathlib import Path

import structlog

from contracts.events import (
    ClipsMerged,
    FinalizationStarted,
    JobCompleted,
    JobRequested,
    RecordedEvent,
    VoiceEnhanced,
    VoiceEnhancementStarted,
    event_id,
)
from services.runtime.context import Runtime
from services.runtime.errors import TransientError
from services.runtime.media_probe import probe
from services.voice.port import VoiceEnhancer

log = structlog.get_logger(__name__)
SERVICE = "voice"


async def handle_clips_merged(recorded: RecordedEvent, *, rt: Runtime, enhancer: VoiceEnhancer) -> None:
    merged = recorded.event
    if not isinstance(merged, ClipsMerged):
        return
    job_id = merged.job_id
    history = await rt.history(job_id)
    if history.finished:
        return
    requested = history.first(JobRequested)
    voice_id = requested.voice_id if requested else None
    work = rt.work_dir(SERVICE, job_id)
    try:
        await rt.recorder.record(
            VoiceEnhancementStarted(event_id=event_id(job_id, "voice-started"), job_id=job_id, provider=enhancer.name)
        )
        try:
            source = await rt.storage.fetch(merged.merged_ref, work)
            voiced = work / "voiced.mp4"
            lufs = await enhancer.enhance(source, voiced, voice_id)
        except TransientError:
            raise  # retried by redelivery
        except Exception as exc:
            # First: on a full disk its files may be what keeps the failure from being recorded.
            rt.clean_work_dir(SERVICE, job_id)
            failed_to = "Failed to enhance the voice"
            await rt.fail_with(job_id, 4, failed_to, exc, log_event="voice.failed")
            return
        if not await rt.still_wanted(job_id):
            return
        await rt.recorder.record(
            VoiceEnhanced(
                event_id=event_id(job_id, "voice-enhanced"),
                job_id=job_id,
                integrated_lufs=None if lufs is None else round(lufs, 2),
            )
        )
        await rt.recorder.record(FinalizationStarted(event_id=event_id(job_id, "finalization-started"), job_id=job_id))
        try:
            final_ref = await rt.storage.put_file(f"jobs/{job_id}/{job_id}.mp4", voiced, "video/mp4")
            captions_ref = await _publish_captions(rt, job_id, merged.captions_ref, work)
            duration = probe(voiced).duration_s or 0.0
        except TransientError:
            raise  # retried by redelivery
        except Exception as exc:
            rt.clean_work_dir(SERVICE, job_id)  # as above
            failed_to = "Failed to store the final video"
            await rt.fail_with(job_id, 5, failed_to, exc, log_event="finalize.failed")
            return
    finally:
        rt.clean_work_dir(SERVICE, job_id)
    if not await rt.still_wanted(job_id):
        return
    await rt.recorder.record(
        JobCompleted(
            event_id=event_id(job_id, "completed"),
            job_id=job_id,
            final_ref=final_ref,
            duration_s=round(duration, 3),
            captions_ref=captions_ref,
        )
    )
    log.info("voice.done", job_id=job_id, lufs=lufs)


async def _publish_captions(rt: Runtime, job_id: str, captions_ref: str | None, work: Path) -> str | None:
    """Store the ad's WebVTT beside the final MP4 (same name, .vtt); return its reference. The voice step keeps the
    picture's timing, so the merged cut's captions fit the final video as they are."""
    if captions_ref is None:
        return None
    source = await rt.storage.fetch(captions_ref, work)
    return await rt.storage.put_file(f"jobs/{job_id}/{job_id}.vtt", source, "text/vtt")
