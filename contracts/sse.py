"""The mapping from stored events to the seed's SSE events, with their exact payloads and progress numbers.

It is a fold over one job's history, so it gives the same stream when replayed from the store as when followed
live. Every payload also carries `job_id` (an additive field the seed allows).
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.events import (
    ClipRendered,
    ClipRenderingStarted,
    FinalizationStarted,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobRequested,
    MergeStarted,
    PromptingStarted,
    PromptsGenerated,
    RecordedEvent,
    VoiceEnhancementStarted,
)

TERMINAL_SSE_EVENTS = frozenset({"complete", "error", "cancelled"})
SSE_EVENT_NAMES = (
    "queued",
    "step1",
    "step1_complete",
    "step2_clip",
    "step3",
    "step4",
    "step5",
    "complete",
    "error",
    "cancelled",
)

# The seed's wording names ElevenLabs; saying so when the voice is mastered locally would mislead the user.
_VOICE_MESSAGES = {"elevenlabs": "Enhancing voice with ElevenLabs..."}
_LOCAL_VOICE = "Enhancing voice..."


class SseEvent(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    id: int  # the job's event sequence number
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL_SSE_EVENTS


def clip_progress(current_clip: int, total_clips: int) -> int:
    return int(30 + 20 * (current_clip - 1) / total_clips)


class SseProjection:
    """Feed a job's recorded events in sequence order; get the SSE event each one maps to, if any."""

    def __init__(self) -> None:
        self._total_clips = 0
        self._clips_done: set[int] = set()

    def apply(self, recorded: RecordedEvent) -> SseEvent | None:
        ev = recorded.event
        job_id = ev.job_id
        name: str
        data: dict[str, Any]
        if isinstance(ev, PromptingStarted):
            name, data = "step1", {"step": 1, "message": "Generating video prompts...", "progress": 10}
        elif isinstance(ev, PromptsGenerated):
            n = len(ev.clips)
            self._total_clips = n
            name = "step1_complete"
            data = {"step": 1, "message": f"Generated {n} video prompts", "total_clips": n, "progress": 20}
        elif isinstance(ev, ClipRenderingStarted):
            self._total_clips = ev.total_clips
            return self._clip_event(recorded.seq, job_id, 1)
        elif isinstance(ev, ClipRendered):
            # step2_clip i is announced once i - 1 clips are finished, whatever order they finish in.
            if ev.index in self._clips_done:
                return None
            self._clips_done.add(ev.index)
            done = len(self._clips_done)
            if done >= self._total_clips:
                return None
            return self._clip_event(recorded.seq, job_id, done + 1)
        elif isinstance(ev, MergeStarted):
            if ev.attempt > 1:
                return None  # a merger taking over a dead one's claim: the client was told at the first
            name, data = "step3", {"step": 3, "message": "Merging video clips...", "progress": 60}
        elif isinstance(ev, VoiceEnhancementStarted):
            name, data = "step4", {"step": 4, "message": _VOICE_MESSAGES.get(ev.provider, _LOCAL_VOICE), "progress": 80}
        elif isinstance(ev, FinalizationStarted):
            name, data = "step5", {"step": 5, "message": "Finalizing...", "progress": 95}
        elif isinstance(ev, JobCompleted):
            name = "complete"
            data = {"status": "completed", "final_video_url": ev.final_video_url}
            if ev.captions_url:
                data["captions_url"] = ev.captions_url  # additive: WebVTT with the same timings as the burned-in text
        elif isinstance(ev, JobFailed):
            name, data = "error", {"message": ev.message, "step": ev.step}
        elif isinstance(ev, JobCancelled):
            name, data = "cancelled", {"status": "cancelled", "message": ev.reason}
        elif isinstance(ev, JobRequested):
            # Additive: the first event names the job at once, before the job may wait in the queue.
            name, data = "queued", {"status": "queued", "message": "Queued", "progress": 0}
        else:
            return None
        data["job_id"] = job_id
        return SseEvent(event=name, id=recorded.seq, data=data)

    def _clip_event(self, seq: int, job_id: str, current: int) -> SseEvent:
        n = self._total_clips
        return SseEvent(
            event="step2_clip",
            id=seq,
            data={
                "step": 2,
                "message": f"Generating clip {current}/{n}",
                "current_clip": current,
                "total_clips": n,
                "progress": clip_progress(current, n),
                "job_id": job_id,
            },
        )


def project(history: list[RecordedEvent]) -> list[SseEvent]:
    projection = SseProjection()
    return [sse for r in history if (sse := projection.apply(r)) is not None]
