"""A real HTTP webhook receiver for tests: records requests, answers as told, verifies per the spec."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.cli.server import bind


def spec_signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Straight from the spec: HMAC-SHA256(base64-decoded key, "id.timestamp.body"), base64, "v1," prefix."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = headers["webhook-id"].encode() + b"." + headers["webhook-timestamp"].encode() + b"." + body
    expected = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(candidate, expected) for candidate in headers["webhook-signature"].split(" "))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload


@dataclass
class Receiver:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # for the next requests; then 200
    hold_seconds: float = 0.0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(headers, body, time.time()))
        if self.hold_seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.hold_seconds)
        status, extra = self.replies.pop(0) if self.replies else (200, {})
        raw_headers = [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(certfile: Path | None = None, keyfile: Path | None = None) -> AsyncIterator[Receiver]:
    """A receiver on a free port of 127.0.0.1; over TLS with `certfile` and `keyfile`."""
    sock = bind("127.0.0.1", 0)
    scheme = "https" if certfile else "http"
    app = Receiver(url=f"{scheme}://127.0.0.1:{sock.getsockname()[1]}/hook")
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the receiver did not start"
        await asyncio.sleep(0.01)
    try:
        yield app
    finally:
        app.release.set()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as app:
        yield app
