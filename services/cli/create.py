"""`adagent create`: send a script and an avatar, show live progress, save the finished MP4."""

from __future__ import annotations

import base64
import itertools
import mimetypes
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from services.cli.sse_client import iter_sse


class CreateFailed(Exception):
    pass


@dataclass
class Outcome:
    job_id: str | None = None
    final_video_url: str | None = None
    out: Path | None = None
    events: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)  # name, data, seconds since start

    def step_times(self) -> dict[str, float]:
        """Seconds spent in each step, from one step's first event to the next step's."""
        marks: list[tuple[str, float]] = []
        for name, _, at in self.events:
            label = {
                "step1": "1 prompts",
                "step2_clip": "2 clips",
                "step3": "3 merge",
                "step4": "4 voice",
                "step5": "5 finalize",
                "complete": "end",
            }.get(name)
            if label and (not marks or marks[-1][0] != label):
                marks.append((label, at))
        return {a: round(tb - ta, 2) for (a, ta), (_, tb) in itertools.pairwise(marks)}


def request_body(script: str, avatar: Path, **options: str | None) -> dict[str, Any]:
    mime = mimetypes.guess_type(avatar.name)[0] or "image/png"
    encoded = base64.b64encode(avatar.read_bytes()).decode()
    body: dict[str, Any] = {"script": script, "character_image": f"data:{mime};base64,{encoded}"}
    body.update({k: v for k, v in options.items() if v is not None})
    return body


class ProgressBar:
    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._tty = stream.isatty()

    def show(self, progress: int, message: str) -> None:
        filled = self._width * progress // 100
        bar = "█" * filled + "░" * (self._width - filled)
        line = f"[{bar}] {progress:3d}%  {message}"
        if self._tty:
            self._stream.write(f"\r\033[K{line}")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


async def create_ad(
    server: str, body: dict[str, Any], out: Path, *, token: str | None = None, progress: TextIO = sys.stderr
) -> Outcome:
    outcome = Outcome()
    bar = ProgressBar(progress)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server, timeout=httpx.Timeout(30.0, read=None)) as client:
        async with client.stream("POST", "/api/ad-agent/create-stream", json=body, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                raise CreateFailed(f"HTTP {response.status_code}: {_detail(response)}")
            outcome.job_id = response.headers.get("x-job-id")
            async for message in iter_sse(response):
                if not message.data:
                    continue
                data = message.json()
                outcome.events.append((message.event, data, time.monotonic() - started))
                outcome.job_id = data.get("job_id", outcome.job_id)
                if message.event == "error":
                    bar.done()
                    raise CreateFailed(data.get("message", "unknown error"))
                if message.event == "complete":
                    outcome.final_video_url = data["final_video_url"]
                    bar.show(100, "Done")
                    break
                bar.show(int(data.get("progress", 0)), str(data.get("message", message.event)))
        bar.done()
        if outcome.final_video_url is None:
            raise CreateFailed("the stream ended before the ad was complete")
        out.parent.mkdir(parents=True, exist_ok=True)
        async with client.stream("GET", outcome.final_video_url) as download:
            if download.status_code != 200:
                raise CreateFailed(f"downloading the video failed: HTTP {download.status_code}")
            with out.open("wb") as f:
                async for chunk in download.aiter_bytes():
                    f.write(chunk)
    outcome.out = out
    return outcome


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text
