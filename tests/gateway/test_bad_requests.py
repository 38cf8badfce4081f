"""Every bad request gets a 4xx JSON error naming the field, before any stream starts, and no job is created."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Server


def _png(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 90)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


GOOD_IMAGE = _png(64, 64)

CASES: list[tuple[str, Any, int, str | None, str]] = [
    ("invalid json", b"{not json", 400, None, "not valid JSON"),
    ("json array", b"[1, 2]", 400, None, "JSON object"),
    ("missing script", {"character_image": GOOD_IMAGE}, 422, "script", "required"),
    ("empty script", {"script": "   ", "character_image": GOOD_IMAGE}, 422, "script", "empty"),
    ("script without words", {"script": "... !!", "character_image": GOOD_IMAGE}, 422, "script", "no words"),
    ("script not a string", {"script": 12, "character_image": GOOD_IMAGE}, 422, "script", "string"),
    ("missing image", {"script": "Hi there."}, 422, "character_image", "required"),
    ("not a data uri", {"script": "Hi.", "character_image": "iVBORw0KGgo="}, 422, "character_image", "data URI"),
    ("bad base64", {"script": "Hi.", "character_image": "data:image/png;base64,@@@"}, 422, "character_image", "base64"),
    (
        "not an image",
        {"script": "Hi.", "character_image": "data:image/png;base64," + base64.b64encode(b"hello world").decode()},
        422,
        "character_image",
        "not an image",
    ),
    (
        "text mime type",
        {"script": "Hi.", "character_image": "data:text/plain;base64,aGVsbG8="},
        422,
        "character_image",
        "image is required",
    ),
    ("too many pixels", {"script": "Hi.", "character_image": _png(8000, 6000)}, 413, "character_image", "pixels"),
    ("tiny image", {"script": "Hi.", "character_image": _png(4, 4)}, 422, "character_image", "16x16"),
    (
        "unknown aspect ratio",
        {"script": "Hi.", "character_image": GOOD_IMAGE, "aspect_ratio": "4:3"},
        422,
        "aspect_ratio",
        "16:9, 9:16, 1:1",
    ),
    (
        "unknown resolution",
        {"script": "Hi.", "character_image": GOOD_IMAGE, "resolution": "4k"},
        422,
        "resolution",
        "720p, 1080p",
    ),
    (
        "name not a string",
        {"script": "Hi.", "character_image": GOOD_IMAGE, "character_name": ["x"]},
        422,
        "character_name",
        "string",
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "field", "words"), CASES, ids=[c[0] for c in CASES])
async def test_bad_request_names_the_field(
    server: Server, case: str, body: Any, status: int, field: str | None, words: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as client:
        if isinstance(body, bytes):
            response = await client.post(
                "/api/ad-agent/create-stream", content=body, headers={"content-type": "application/json"}
            )
        else:
            response = await client.post("/api/ad-agent/create-stream", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert words in payload["detail"]
    assert payload.get("field") == field
    assert await server.stack.runtime.store.job_ids() == []


async def test_oversized_image_is_refused(tmp_path: Any) -> None:
    from tests.conftest import start_server

    async for small in start_server(tmp_path / "home", max_image_bytes=50_000):
        noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))  # incompressible: ~270 kB as PNG
        out = io.BytesIO()
        noise.save(out, format="PNG")
        uri = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
        headers = {"Authorization": f"Bearer {small.token}"}
        async with httpx.AsyncClient(base_url=small.url, headers=headers) as client:
            response = await client.post("/api/ad-agent/create-stream", json={"script": "Hi.", "character_image": uri})
        assert response.status_code == 413
        assert response.json()["field"] == "character_image"


async def test_health_answers_when_ready(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
