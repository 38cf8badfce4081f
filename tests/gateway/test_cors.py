"""CORS over real HTTP, as a browser on another origin speaks it: the preflight of the seed's `fetch` (Authorization
and a JSON body), the headers of the real answers, and ADAGENT_CORS_ORIGINS narrowing who may call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.cli.sse_client import iter_sse
from services.runtime.settings import SettingsError, load_settings
from tests.conftest import Server, start_server
from tests.gateway.jobs_client import body, client_for

FRONT = "https://front.example"  # a page's origin, not the gateway's
STREAM = "/api/ad-agent/create-stream"


def _listed(response: httpx.Response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.headers.get(name, "").split(",") if item.strip()}


async def _preflight(url: str, path: str, origin: str, method: str, headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.options(
            path,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )


@pytest.fixture
async def app_only_server(tmp_path: Path) -> AsyncIterator[Server]:
    """A gateway started with ADAGENT_CORS_ORIGINS naming one front end."""
    origins = load_settings({"ADAGENT_CORS_ORIGINS": "https://app.example, http://localhost:3000"}).cors_origins
    async for server in start_server(tmp_path / "home", cors_origins=origins):
        yield server


async def test_the_preflight_of_the_seed_fetch_is_allowed(server: Server) -> None:
    response = await _preflight(server.url, STREAM, FRONT, "POST", "authorization,content-type")
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert {"authorization", "content-type"} <= _listed(response, "access-control-allow-headers")
    assert {"get", "post"} <= _listed(response, "access-control-allow-methods")
    # Bearer tokens and API keys travel in a header, not in cookies: no credentialed CORS.
    assert "access-control-allow-credentials" not in response.headers
    # The other headers a page sends: the create route's key, and the resume point of an events stream.
    for path, method, headers in [
        ("/api/ad-agent/create", "POST", "authorization,content-type,idempotency-key"),
        ("/api/ad-agent/jobs/ad_1795885518756927/events", "GET", "authorization,last-event-id"),
    ]:
        response = await _preflight(server.url, path, FRONT, method, headers)
        assert response.status_code == 204, (path, response.text)
        assert set(headers.split(",")) <= _listed(response, "access-control-allow-headers")


async def test_answers_to_another_origin_carry_allow_origin_and_expose_the_api_headers(
    server: Server, avatar_data_uri: str
) -> None:
    async with client_for(server.url, server.token) as client:
        async with client.stream("POST", STREAM, json=body(avatar_data_uri), headers={"Origin": FRONT}) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["access-control-allow-origin"] == "*"
            exposed = _listed(response, "access-control-expose-headers")
            assert {"x-job-id", "location", "retry-after", "www-authenticate", "content-range"} <= exposed
            events = [message.event async for message in iter_sse(response) if message.data]
        assert events[0] == "queued" and events[-1] == "complete", events
        listed = await client.get("/api/ad-agent/jobs", headers={"Origin": FRONT})
        assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == "*"
    # A 401 too, so that the page can read why it was refused.
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        refused = await anonymous.get("/api/ad-agent/jobs", headers={"Origin": FRONT})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    assert "www-authenticate" in _listed(refused, "access-control-expose-headers")


async def test_only_the_configured_origins_are_allowed(app_only_server: Server) -> None:
    server = app_only_server
    allowed = await _preflight(server.url, STREAM, "https://app.example", "POST", "authorization,content-type")
    assert allowed.status_code == 204, allowed.text
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "origin" in _listed(allowed, "vary")

    other = await _preflight(server.url, STREAM, FRONT, "POST", "authorization,content-type")
    assert "access-control-allow-origin" not in other.headers
    assert other.status_code == 400

    async with client_for(server.url, server.token) as client:
        for origin in ("https://app.example", "http://localhost:3000"):
            response = await client.get("/api/ad-agent/jobs", headers={"Origin": origin})
            assert response.status_code == 200 and response.headers["access-control-allow-origin"] == origin
        response = await client.get("/api/ad-agent/jobs", headers={"Origin": FRONT})
        assert response.status_code == 200  # the server answers; the browser keeps the answer from the page
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "value", ["https://app.example/", "app.example", "https://app.example/ads", "https://a.example,"]
)
def test_an_origin_that_could_never_match_is_refused_at_start(value: str) -> None:
    with pytest.raises(SettingsError, match="ADAGENT_CORS_ORIGINS must be"):
        load_settings({"ADAGENT_CORS_ORIGINS": value})
