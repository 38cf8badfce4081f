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


class WordTiming(msgspec.Struct, frozen=True, array_like=True):
    """A spoken word and when it is heard, in seconds from the start of its clip (or of the ad, once merged)."""

    word: str
    start: float
    end: float


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    event_id: str
    job_id: str
    v: int = SCHEMA_VERSION


class JobRequested(Event, frozen=True, kw_only=True):
    """A job was accepted and queued. The scheduler decides when it starts (JobStarted)."""

    script: str
    avatar_ref: str
    character_name: str
    voice_id: str | None
    aspect_ratio: str
    resolution: str
    owner: str = ""
    priority: str = "normal"  # low | normal | high
    webhook_url: str | None = None
    webhook_events: list[str] | None = None  # SSE event names to deliver; None = the terminal ones
    idempotency_key: str | None = None
    body_sha256: str | None = None


class JobStarted(Event, frozen=True, kw_only=True):
    """The scheduler admitted the job: a running slot is its until a terminal event."""


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
    words: list[WordTiming] = []  # for captions of the whole ad; empty when the provider gives no timings


class ClipGenerationSubmitted(Event, frozen=True, kw_only=True):
    """A provider accepted a paid, long-running clip generation. Recorded before polling, so a renderer restarted
    mid-clip polls this operation instead of paying for a second one."""

    index: int
    attempt: int  # 1 for the first operation of this clip; a later one replaces an operation the provider failed
    provider: str
    operation_name: str


class MergeStarted(Event, frozen=True, kw_only=True):
    """A merger's claim on the job's merge. A claim with no ClipsMerged after the lease (ADAGENT_MERGE_LEASE_SECONDS)
    belonged to a merger that died: another takes over with the next attempt."""

    total_clips: int
    attempt: int = 1


class ClipsMerged(Event, frozen=True, kw_only=True):
    merged_ref: str
    duration_s: float
    captions_ref: str | None = None  # WebVTT of the whole ad


class VoiceEnhancementStarted(Event, frozen=True, kw_only=True):
    provider: str = "local"


class VoiceEnhanced(Event, frozen=True, kw_only=True):
    integrated_lufs: float | None = None


class FinalizationStarted(Event, frozen=True, kw_only=True):
    pass


class JobCompleted(Event, frozen=True, kw_only=True):
    """v2 keeps references only: a signed link is a live credential, so it is minted when the event is read or
    streamed (see gateway.fresh_links), never stored. v1 events, already in the append-only store, carry the links
    signed at completion (`final_video_url`, `captions_url`); readers ignore them when the reference is there."""

    v: int = 2
    final_ref: str
    duration_s: float
    captions_ref: str | None = None  # absent from v1 jobs completed before it was recorded
    final_video_url: str | None = None  # v1 only
    captions_url: str | None = None  # v1 only


class JobFailed(Event, frozen=True, kw_only=True):
    step: int
    message: str


class JobCancelled(Event, frozen=True, kw_only=True):
    by: str = ""
    reason: str = "cancelled by the user"


class WebhookAttempted(Event, frozen=True, kw_only=True):
    """One delivery attempt of one event to the job's webhook (recorded in the job's stream, after the fact)."""

    webhook_id: str
    event: str  # the SSE event name delivered
    attempt: int
    status_code: int | None
    ok: bool
    error: str | None = None
    next_attempt_at: float | None = None


# Accounts live in one stream of their own, "accounts" (the `job_id` field holds the stream id).


class UserAdded(Event, frozen=True, kw_only=True):
    username: str
    password_hash: str
    webhook_secret: str  # "whsec_" + base64 key, signs this user's webhooks


class UserPasswordChanged(Event, frozen=True, kw_only=True):
    password_hash: str


class UserRemoved(Event, frozen=True, kw_only=True):
    pass


class ApiKeyCreated(Event, frozen=True, kw_only=True):
    key_id: str
    username: str
    key_sha256: str
    label: str = ""


class ApiKeyRevoked(Event, frozen=True, kw_only=True):
    key_id: str


AnyEvent = (
    JobRequested
    | JobStarted
    | PromptingStarted
    | PromptsGenerated
    | ClipRenderingStarted
    | ClipRendered
    | ClipGenerationSubmitted
    | MergeStarted
    | ClipsMerged
    | VoiceEnhancementStarted
    | VoiceEnhanced
    | FinalizationStarted
    | JobCompleted
    | JobFailed
    | JobCancelled
    | WebhookAttempted
    | UserAdded
    | UserPasswordChanged
    | UserRemoved
    | ApiKeyCreated
    | ApiKeyRevoked
)

TERMINAL_EVENTS: tuple[type[Event], ...] = (JobCompleted, JobFailed, JobCancelled)


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the store holds it: with the job's sequence number (the SSE `id:`) and the time it was appended."""

    seq: int
    recorded_at: float
    event: AnyEvent


def event_type(event: Event) -> str:
    return type(event).__name__


def event_id(job_id: str, *parts: object) -> str:
    return "/".join([job_id, *(str(p) for p in parts)])
