"""Events: facts in the past tense. Each is appended to the event store, then published on the bus.

Event ids are deterministic per job and step, so a redelivered message that produces the same fact again is
rejected by the store and has no second effect.
"""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 1


class ClipPlan(msgspec.Struct, frozen=True, kw_only=True):
    """One scene: the exact line the character speaks and the visual prompt for it."""

    index: int  # 1-based, in script order
    line: str
    prompt: str
    est_seconds: float


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    event_id: str
    job_id: str
    v: int = SCHEMA_VERSION


class JobRequested(Event, frozen=True, kw_only=True):
    script: str
    avatar_ref: str
    character_name: str
    voice_id: str | None
    aspect_ratio: str
    resolution: str


class PromptingStarted(Event, frozen=True, kw_only=True):
    pass


class PromptsGenerated(Event, frozen=True, kw_only=True):
    clips: list[ClipPlan]


class ClipRenderingStarted(Event, frozen=True, kw_only=True):
    total_clips: int


class ClipRendered(Event, frozen=True, kw_only=True):
    index: int
    total_clips: int
    clip_ref: str
    duration_s: float


class MergeStarted(Event, frozen=True, kw_only=True):
    total_clips: int


class ClipsMerged(Event, frozen=True, kw_only=True):
    merged_ref: str
    duration_s: float


class VoiceEnhancementStarted(Event, frozen=True, kw_only=True):
    provider: str = "local"


class VoiceEnhanced(Event, frozen=True, kw_only=True):
    integrated_lufs: float | None = None


class FinalizationStarted(Event, frozen=True, kw_only=True):
    pass


class JobCompleted(Event, frozen=True, kw_only=True):
    final_ref: str
    final_video_url: str
    duration_s: float


class JobFailed(Event, frozen=True, kw_only=True):
    step: int
    message: str


AnyEvent = (
    JobRequested
    | PromptingStarted
    | PromptsGenerated
    | ClipRenderingStarted
    | ClipRendered
    | MergeStarted
    | ClipsMerged
    | VoiceEnhancementStarted
    | VoiceEnhanced
    | FinalizationStarted
    | JobCompleted
    | JobFailed
)

TERMINAL_EVENTS: tuple[type[Event], ...] = (JobCompleted, JobFailed)


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the store holds it: with the job's sequence number (the SSE `id:`) and the time it was appended."""

    seq: int
    recorded_at: float
    event: AnyEvent


def event_type(event: Event) -> str:
    return type(event).__name__


def event_id(job_id: str, *parts: object) -> str:
    return "/".join([job_id, *(str(p) for p in parts)])
