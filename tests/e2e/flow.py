"""The client side of the seed's flow, as a marketer's tool would run it, with every check the seed implies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contracts.sse import clip_progress
from services.cli.sse_client import SseMessage, iter_sse
from services.prompter.script_split import speech_seconds
from services.runtime.media_probe import decode_audio, probe, rms_dbfs

SEED_FIELDS: dict[str, set[str]] = {
    "step1": {"step", "message", "progress"},
    "step1_complete": {"step", "message", "total_clips", "progress"},
    "step2_clip": {"step", "message", "current_clip", "total_clips", "progress"},
    "step3": {"step", "message", "progress"},
    "step4": {"step", "message", "progress"},
    "step5": {"step", "message", "progress"},
    "complete": {"status", "final_video_url", "job_id"},
    "error": {"message"},
    "queued": {"status", "job_id"},
    "cancelled": {"status", "message", "job_id"},
}


@dataclass
class StreamResult:
    status: int
    raw: str
    messages: list[SseMessage]

    @property
    def names(self) -> list[str]:
        return [m.event for m in self.messages if m.data]

    def data(self, name: str) -> list[dict[str, Any]]:
        return [m.json() for m in self.messages if m.event == name]


async def post_stream(base_url: str, body: dict[str, Any], token: str) -> StreamResult:
    raw_lines: list[str] = []
    messages: list[SseMessage] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, read=300), headers=headers) as client:
        async with client.stream("POST", "/api/ad-agent/create-stream", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for message in iter_sse(response):
                messages.append(message)
                raw_lines.append(f"{message.event} {message.id} {message.data}")
            return StreamResult(response.status_code, "\n".join(raw_lines), messages)


def check_seed_stream(result: StreamResult) -> dict[str, Any]:
    """The seed's event names, order, payload fields and progress numbers; returns the `complete` payload."""
    assert result.status == 200
    assert result.names[0] == "queued"  # additive: names the job before it may wait for a slot
    names = [n for n in result.names if n != "queued"]
    assert "error" not in names, result.raw
    n = result.data("step1_complete")[0]["total_clips"]
    assert n >= 1
    assert names == ["step1", "step1_complete", *["step2_clip"] * n, "step3", "step4", "step5", "complete"], names
    for message in result.messages:
        if not message.data:
            continue
        data = message.json()
        assert SEED_FIELDS[message.event] <= set(data), (message.event, data)
        assert message.id is not None and message.id.isdigit()
    ids = [int(m.id) for m in result.messages if m.data and m.id]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    progress = [m.json()["progress"] for m in result.messages if m.data and "progress" in m.json()]
    assert progress == sorted(progress)
    assert [d["progress"] for d in result.data("step1")] == [10]
    first = result.data("step1_complete")[0]
    assert first["message"] == f"Generated {n} video prompts" and first["progress"] == 20
    clips = result.data("step2_clip")
    assert [c["current_clip"] for c in clips] == list(range(1, n + 1))
    assert [c["progress"] for c in clips] == [clip_progress(i, n) for i in range(1, n + 1)]
    assert [c["message"] for c in clips] == [f"Generating clip {i}/{n}" for i in range(1, n + 1)]
    assert all(c["total_clips"] == n and c["step"] == 2 for c in clips)
    assert [result.data(s)[0]["progress"] for s in ("step3", "step4", "step5")] == [60, 80, 95]
    complete = result.data("complete")[0]
    assert complete["status"] == "completed"
    assert complete["job_id"].startswith("ad_") and complete["job_id"][3:].isdigit()
    assert all(m.json()["job_id"] == complete["job_id"] for m in result.messages if m.data)
    return dict(complete)


async def download(url: str, dest: Path) -> Path:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("video/mp4")
        await asyncio.to_thread(dest.write_bytes, response.content)
    return dest


def check_video(path: Path, script: str, size: tuple[int, int]) -> None:
    info = probe(path)
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert (info.width, info.height) == size
    expected = speech_seconds(script)
    assert 0.5 * expected <= info.duration_s <= 2.0 * expected, (info.duration_s, expected)
    assert rms_dbfs(decode_audio(path)) > -35.0
