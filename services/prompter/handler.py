"""Step 1 handler: JobStarted → PromptingStarted, PromptsGenerated, ClipRenderingStarted and N RenderClip commands."""

from __future__ import annotations

import structlog

from contracts.commands import RenderClip
from contracts.events import (
    ClipRenderingStarted,
    JobRequested,
    PromptingStarted,
    PromptsGenerated,
    RecordedEvent,
    event_id,
)
from services.prompter.port import PromptWriter
from services.runtime.context import Runtime
from services.runtime.errors import TransientError

log = structlog.get_logger(__name__)
STEP = 1


async def handle_job_started(recorded: RecordedEvent, *, rt: Runtime, writer: PromptWriter) -> None:
    history = await rt.history(recorded.event.job_id)
    job = history.first(JobRequested)
    if job is None or history.finished:
        return
    await rt.recorder.record(PromptingStarted(event_id=event_id(job.job_id, "prompting-started"), job_id=job.job_id))
    # A redelivery reuses the prompts already recorded: a model asked twice would answer differently.
    generated = history.first(PromptsGenerated)
    if generated is None:
        try:
            clips = await writer.write_prompts(job)
        except TransientError:
            raise  # retried by redelivery
        except Exception as exc:
            await rt.fail_with(job.job_id, STEP, "Failed to generate video prompts", exc, log_event="prompter.failed")
            return
        if not await rt.still_wanted(job.job_id):
            return
        generated = PromptsGenerated(event_id=event_id(job.job_id, "prompts-generated"), job_id=job.job_id, clips=clips)
        generated = (await rt.recorder.record(generated)).recorded.event  # type: ignore[assignment]
    assert isinstance(generated, PromptsGenerated)
    total = len(generated.clips)
    await rt.recorder.record(
        ClipRenderingStarted(event_id=event_id(job.job_id, "rendering-started"), job_id=job.job_id, total_clips=total)
    )
    for clip in generated.clips:
        await rt.bus.send_command(
            RenderClip(
                command_id=event_id(job.job_id, "render", clip.index),
                job_id=job.job_id,
                clip=clip,
                total_clips=total,
                avatar_ref=job.avatar_ref,
                character_name=job.character_name,
                voice_id=job.voice_id,
                aspect_ratio=job.aspect_ratio,
                resolution=job.resolution,
            )
        )
    log.info("prompter.done", job_id=job.job_id, clips=total)
