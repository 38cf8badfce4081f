"""A small client for the jobs API, for tests: a user's authenticated httpx client and SSE reading helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from services.cli.sse_client import SseMessage, iter_sse

SCRIPT = "Meet Glow, the serum that works while you sleep. Wake up radiant!"


@asynccontextmanager
async def client_for(base_url: str, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=httpx.Timeout(30, read=120)) as c:
        yield c


def body(avatar: str, **extra: Any) -> dict[str, Any]:
    return {"script": SCRIPT, "character_image": avatar, **extra}


async def read_events(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None, stop_after: int | None = None
) -> list[SseMessage]:
    """Read SSE messages with data until the stream ends (or `stop_after` of them, then drop the connection)."""
    got: list[SseMessage] = []
    async with client.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200, await response.aread()
        async for message in iter_sse(response):
            if message.data:
                got.append(message)
                if stop_after is not None and len(got) >= stop_after:
                    break
    return got


async def wait_for_status(client: httpx.AsyncClient, job_id: str, status: str, within: float = 120) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        state = (await client.get(f"/api/ad-agent/jobs/{job_id}")).json()
        if state["status"] == status:
            return dict(state)
        assert loop.time() < deadline, state
        await asyncio.sleep(0.1)
