"""`HEAD` works wherever `GET` does: every GET route of the app answers HEAD with the status and headers of its GET
(Content-Length included) and no body; a download's byte range too; a live SSE stream answers at once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from litestar.routes import HTTPRoute

from services.runtime.storage.local import LocalStorage
from tests.conftest import Server
from tests.gateway.jobs_client import body, client_for

# What changes from one answer to the next, whatever the method.
_VARYING = {"date"}


def _same_headers(get: httpx.Response, head: httpx.Response, what: str) -> None:
    assert head.status_code == get.status_code, what
    assert head.content == b"", what
    get_headers = {k: v for k, v in get.headers.items() if k not in _VARYING}
    head_headers = {k: v for k, v in head.headers.items() if k not in _VARYING}
    assert head_headers == get_headers, what
    if "content-length" in get.headers:
        assert int(head.headers["content-length"]) == len(get.content), what


async def test_every_get_route_answers_head_like_get(server: Server, tmp_path: Path, avatar_data_uri: str) -> None:
    storage = server.stack.runtime.storage
    assert isinstance(storage, LocalStorage)
    src = tmp_path / "x.mp4"
    src.write_bytes(bytes(range(256)) * 1000)
    signed = urlsplit(await storage.signed_url(await storage.put_file("jobs/ad_1/ad_1.mp4", src, "video/mp4"), 60))

    async with client_for(server.url, server.token) as client:
        job_id = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()["job_id"]
        await client.post(f"/api/ad-agent/jobs/{job_id}/cancel")
        # A value for each path parameter that makes the GET succeed; a new route's parameter must be added here.
        values = {
            "job_id": job_id,
            "key": signed.path.removeprefix("/files/") + "?" + signed.query,
            "file_path": "swagger-ui.css",
            "name": "app.js",
            "path": "no-such-page",
        }
        paths = sorted(
            {
                route.path_format
                for route in server.stack.app.routes
                if isinstance(route, HTTPRoute) and "GET" in route.methods
            }
        )
        assert {"/health", "/files/{key}", "/docs", "/openapi.json", "/api/ad-agent/jobs/{job_id}/events"} <= set(paths)
        for path_format in paths:
            path = re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path_format)
            get, head = await client.get(path), await client.head(path)
            assert head.status_code != 405, path_format
            _same_headers(get, head, path_format)
            if path_format != "/docs/{path}":  # Litestar's "no such docs page" is a 404 on purpose
                assert get.status_code < 400, (path_format, get.status_code)

        # A byte range: 206 with its Content-Range and Content-Length, no body.
        url = f"/files/{values['key']}"
        get = await client.get(url, headers={"Range": "bytes=10-19"})
        head = await client.head(url, headers={"Range": "bytes=10-19"})
        assert head.status_code == 206 and head.headers["content-range"] == "bytes 10-19/256000"
        _same_headers(get, head, "a byte range")
        # Errors are answered alike too.
        for path in ("/api/ad-agent/jobs/ad_0/events", "/files/jobs/ad_1/ad_1.mp4", "/no/such/path"):
            _same_headers(await client.get(path), await client.head(path), path)


async def test_head_of_a_live_stream_answers_at_once(server: Server, avatar_data_uri: str) -> None:
    async with client_for(server.url, server.token) as client:
        job_id = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()["job_id"]
        head = await asyncio.wait_for(client.head(f"/api/ad-agent/jobs/{job_id}/events"), 5)
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""
        assert (await client.get(f"/api/ad-agent/jobs/{job_id}")).json()["status"] in ("queued", "running")
        await client.post(f"/api/ad-agent/jobs/{job_id}/cancel")
