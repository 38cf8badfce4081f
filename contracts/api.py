"""Response bodies of the jobs API (the create-stream request is contracts.request)."""

from __future__ import annotations

import msgspec

from contracts.job_view import JobStatus, Priority


class JobCreated(msgspec.Struct, kw_only=True):
    job_id: str
    status: JobStatus
    status_url: str
    events_url: str  # SSE; carries a short-lived token so a browser's EventSource can use it as is
    websocket_url: str


class JobState(msgspec.Struct, kw_only=True):
    job_id: str
    status: JobStatus
    step: int
    progress: int
    clips_done: int
    total_clips: int
    priority: Priority
    created_at: float
    updated_at: float
    queue_position: int | None = None
    final_video_url: str | None = None  # signed afresh at each read: valid for the URL lifetime from now
    captions_url: str | None = None
    error: str | None = None
    events_url: str | None = None


class JobList(msgspec.Struct, kw_only=True):
    jobs: list[JobState]
    next_cursor: str | None = None
