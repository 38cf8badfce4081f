"""Keep-alives on quiet streams are comment lines alone (`: ping`, blank line): the seed's own Python client parses
every `data:` line as JSON, and a browser's EventSource dispatches a `message` for every block with a `data:` field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import start_server
from tests.gateway.jobs_client import body
from tests.gateway.test_jobs_api import GatedRenderer

INTERVAL = 0.3
QUIET_INTERVALS = 3


async def seed_client(url: str, token: str, request_data: dict[str, Any], on_comment: Any) -> list[str]:
    """The seed's Python example (STREAMING_ENDPOINT_README.md), as written there, plus a hook on comment lines."""
    events: list[str] = []
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream(
            "POST", f"{url}/api/ad-agent/create-stream", json=request_data, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        current_event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                current_event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1].strip())  # the seed's parse: raises on an empty data line
                assert data["job_id"]
                events.append(str(current_event))
            elif line.startswith(":"):
                on_comment()
    return events


async def test_the_seed_client_reads_a_stream_quiet_for_three_keep_alive_intervals(
    tmp_path: Path, avatar_data_uri: str
) -> None:
    renderer = GatedRenderer()
    comments = 0

    def on_comment() -> None:
        nonlocal comments
        comments += 1
        if comments == QUIET_INTERVALS:
            renderer.gate.set()

    async for server in start_server(tmp_path / "home", {"renderer": renderer}, sse_keepalive_seconds=INTERVAL):
        events = await seed_client(server.url, server.token, body(avatar_data_uri), on_comment)
        assert comments >= QUIET_INTERVALS
        assert events[-1] == "complete", events


async def test_a_keep_alive_is_a_comment_line_and_a_blank_line(tmp_path: Path, avatar_data_uri: str) -> None:
    """Read as bytes: every block that starts with a comment holds nothing but the comment."""
    renderer = GatedRenderer()
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, sse_keepalive_seconds=INTERVAL):
        headers = {"Authorization": f"Bearer {server.token}"}
        raw = b""
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream(
                "POST", f"{server.url}/api/ad-agent/create-stream", json=body(avatar_data_uri), headers=headers
            ) as response,
        ):
            async for chunk in response.aiter_bytes():
                raw += chunk
                if raw.count(b": ping") >= QUIET_INTERVALS:
                    break
        renderer.gate.set()
        blocks = raw.replace(b"\r\n", b"\n").split(b"\n\n")
        pings = [block for block in blocks if block.startswith(b":")]
        assert len(pings) >= QUIET_INTERVALS
        assert all(block == b": ping" for block in pings), pings
