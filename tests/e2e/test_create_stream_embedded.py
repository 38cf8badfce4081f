"""The seed's flow over real HTTP against the embedded stack: POST, read the SSE stream, download, check the MP4."""

from __future__ import annotations

from pathlib import Path

from contracts.events import ClipRendered
from services.cli.events import format_history
from tests.conftest import Server
from tests.e2e.flow import check_seed_stream, check_video, download, post_stream

SCRIPT = "Meet Glow, the serum that works while you sleep. Wake up radiant! Order today and save twenty percent."


async def test_create_stream_renders_a_playable_ad(server: Server, avatar_data_uri: str, tmp_path: Path) -> None:
    body = {"script": SCRIPT, "character_image": avatar_data_uri, "character_name": "Heather"}
    result = await post_stream(server.url, body, server.token)
    complete = check_seed_stream(result)
    video = await download(complete["final_video_url"], tmp_path / "ad.mp4")
    check_video(video, SCRIPT, (1280, 720))

    history = await server.stack.runtime.store.history(complete["job_id"])
    clips = [r.event for r in history if isinstance(r.event, ClipRendered)]
    assert len(clips) >= 2
    assert all(c.duration_s <= 8.5 for c in clips)  # at most 8 s of speech, plus the breath after it
    printed = format_history(history)
    for name in ("JobRequested", "PromptsGenerated", "ClipRendered", "ClipsMerged", "VoiceEnhanced", "JobCompleted"):
        assert name in printed


async def test_vertical_format_has_the_requested_size(server: Server, avatar_data_uri: str, tmp_path: Path) -> None:
    body = {"script": "Wake up radiant.", "character_image": avatar_data_uri, "aspect_ratio": "9:16"}
    complete = check_seed_stream(await post_stream(server.url, body, server.token))
    video = await download(complete["final_video_url"], tmp_path / "ad.mp4")
    check_video(video, "Wake up radiant.", (720, 1280))
