"""Commands: requests for work sent to exactly one consumer queue."""

from __future__ import annotations

import msgspec

from contracts.events import SCHEMA_VERSION, ClipPlan


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    command_id: str
    job_id: str
    v: int = SCHEMA_VERSION


class RenderClip(Command, frozen=True, kw_only=True):
    clip: ClipPlan
    total_clips: int
    avatar_ref: str
    character_name: str
    voice_id: str | None
    aspect_ratio: str
    resolution: str


AnyCommand = RenderClip


def command_type(command: Command) -> str:
    return type(command).__name__
