"""JSON nested far deeper than any request needs is a 400 with a message on every route that reads a JSON body
(and on the WebSocket), not a 500: msgspec stops at Python's recursion limit with a RecursionError."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from services.gateway.json_body import MAX_DEPTH
from tests.conftest import Server, start_server

DEEP = 1000


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Server]:
    """The gateway alone: jobs are created and stay queued, nothing renders."""
    async for server in start_server(tmp_path / "home", {"workers": ()}):
        yield server


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _bodies(depth: int) -> dict[str, str]:
    return {
        "an array": _nested(depth),
        "an object's field": '{"username": "ann", "password": "x", "script": "Hi.", "extra": ' + _nested(depth) + "}",
        "objects in objects": '{"a":' * depth + "1" + "}" * depth,
    }


async def _json_body_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """Every operation of the document that takes a JSON body: a route added later is covered too."""
    spec = (await client.get("/openapi.json")).json()
    components = spec.get("components", {}).get("requestBodies", {})

    def content(operation: dict[str, Any]) -> dict[str, Any]:
        body = operation.get("requestBody") or {}
        if "$ref" in body:
            body = components[body["$ref"].removeprefix("#/components/requestBodies/")]
        return dict(body.get("content", {}))

    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "application/json" in content(operation)
    ]


@pytest.mark.parametrize("depth", [DEEP, 100_000])
async def test_deeply_nested_json_is_a_400_on_every_json_route(gateway: Server, depth: int) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        routes = await _json_body_routes(client)
        assert {path for _, path in routes} >= {
            "/api/auth/login",
            "/api/ad-agent/create",
            "/api/ad-agent/create-stream",
        }
        for method, path in routes:
            for label, body in _bodies(depth).items():
                for token in (gateway.token, None):
                    headers = {"content-type": "application/json"}
                    if token:
                        headers["Authorization"] = f"Bearer {token}"
                    response = await client.request(method, path, content=body, headers=headers)
                    if path != "/api/auth/login" and token is None:
                        assert response.status_code == 401, (path, label, response.text)
                        continue
                    assert response.status_code == 400, (method, path, label, response.text[:300])
                    detail = response.json()
                    assert set(detail) == {"status_code", "detail"}, detail
                    assert detail["status_code"] == 400
                    assert f"more than {MAX_DEPTH} levels deep" in detail["detail"], detail
    assert await gateway.stack.runtime.store.job_ids() == []


async def test_an_unknown_field_nested_within_the_limit_is_accepted(gateway: Server, avatar_data_uri: str) -> None:
    body: dict[str, Any] = {"script": "Hi there.", "character_image": avatar_data_uri, "extra": json.loads(_nested(20))}
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.token}"}) as client:
        response = await client.post("/api/ad-agent/create", json=body)
        assert response.status_code == 202, response.text
        login = await client.post("/api/auth/login", json={"username": "ann", "password": "no", "x": body["extra"]})
        assert login.status_code == 401, login.text


async def test_a_deeply_nested_websocket_message_is_answered_and_the_socket_keeps_working(
    gateway: Server, avatar_data_uri: str
) -> None:
    headers = {"Authorization": f"Bearer {gateway.token}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as client:
        created = await client.post("/api/ad-agent/create", json={"script": "Hi.", "character_image": avatar_data_uri})
    assert created.status_code == 202, created.text
    ws_url = gateway.url.replace("http://", "ws://") + created.json()["websocket_url"]
    async with websockets.connect(ws_url, additional_headers=headers) as ws:
        await ws.send(_nested(DEEP))
        await ws.send(json.dumps({"action": "cancel"}))
        events: list[dict[str, Any]] = []
        async for raw in ws:
            events.append(json.loads(raw))
            if events[-1]["event"] == "cancelled":
                break
    invalid = [e for e in events if e["event"] == "invalid"]
    assert len(invalid) == 1, events
    assert f"more than {MAX_DEPTH} levels deep" in invalid[0]["data"]["message"]
    assert events[-1]["event"] == "cancelled", events
