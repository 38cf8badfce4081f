"""A job's state as the API shows it: a fold over its events, kept beside the event store (and rebuildable by replay).

`apply` is pure: the store runs it inside the same transaction as each append, so the view never lags its events.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from contracts.events import (
    AnyEvent,
    ClipRendered,
    ClipRenderingStarted,
    ClipsMerged,
    FinalizationStarted,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobRequested,
    JobStarted,
    MergeStarted,
    PromptingStarted,
    PromptsGenerated,
    VoiceEnhanced,
    VoiceEnhancementStarted,
)
from contracts.sse import clip_progress

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
Priority = Literal["low", "normal", "high"]
PRIORITY_RANK: dict[str, int] = {"high": 0, "normal": 1, "low": 2}
FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class JobView(msgspec.Struct, kw_only=True):
    job_id: str
    owner: str
    status: JobStatus = "queued"
    step: int = 0
    progress: int = 0
    clips_done: int = 0
    total_clips: int = 0
    priority: Priority = "normal"
    created_at: float = 0.0
    updated_at: float = 0.0
    final_video_url: str | None = None
    final_ref: str | None = None
    captions_url: str | None = None
    captions_ref: str | None = None
    error: str | None = None
    aspect_ratio: str = "16:9"
    resolution: str = "720p"
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    idempotency_key: str | None = None
    body_sha256: str | None = None
    last_seq: int = 0
    terminal_seq: int | None = None  # the seq of the event that finished the job (the stream's last SSE id)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def apply(view: JobView | None, event: AnyEvent, seq: int, at: float) -> JobView | None:
    """The view after `event`; None while the stream is not a job (no JobRequested yet)."""
    if isinstance(event, JobRequested):
        return JobView(
            job_id=event.job_id,
            owner=event.owner,
            priority=event.priority,  # type: ignore[arg-type]
            created_at=at,
            updated_at=at,
            aspect_ratio=event.aspect_ratio,
            resolution=event.resolution,
            webhook_url=event.webhook_url,
            webhook_events=event.webhook_events,
            idempotency_key=event.idempotency_key,
            body_sha256=event.body_sha256,
            last_seq=seq,
        )
    if view is None:
        return None
    view = msgspec.structs.replace(view, last_seq=seq, updated_at=at)
    if view.finished:
        return view  # the first terminal event decides; later ones (webhook attempts, races) change nothing
    if isinstance(event, JobStarted):
        view.status = "running"
    elif isinstance(event, PromptingStarted):
        view.status, view.step, view.progress = "running", 1, 10
    elif isinstance(event, PromptsGenerated):
        view.total_clips, view.progress = len(event.clips), 20
    elif isinstance(event, ClipRenderingStarted):
        view.step, view.total_clips, view.progress = 2, event.total_clips, clip_progress(1, event.total_clips)
    elif isinstance(event, ClipRendered):
        view.clips_done += 1
        if view.clips_done < view.total_clips:
            view.progress = clip_progress(view.clips_done + 1, view.total_clips)
    elif isinstance(event, MergeStarted):
        view.step, view.progress = 3, 60
    elif isinstance(event, ClipsMerged):
        pass
    elif isinstance(event, VoiceEnhancementStarted):
        view.step, view.progress = 4, 80
    elif isinstance(event, VoiceEnhanced):
        pass
    elif isinstance(event, FinalizationStarted):
        view.step, view.progress = 5, 95
    elif isinstance(event, JobCompleted):
        view.status, view.progress, view.final_video_url = "completed", 100, event.final_video_url
        view.final_ref, view.captions_url, view.captions_ref = event.final_ref, event.captions_url, event.captions_ref
    elif isinstance(event, JobFailed):
        view.status, view.error = "failed", event.message
    elif isinstance(event, JobCancelled):
        view.status = "cancelled"
    if view.finished:
        view.terminal_seq = seq
    return view
