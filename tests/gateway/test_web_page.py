"""The web page over real HTTP: `/` is the page, its script and style sheet come with the right types and a strict
Content-Security-Policy, and the API, the spec and the docs are where they were."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Server


async def test_the_root_is_the_page_and_names_its_script_and_style(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        scripts = re.findall(r'<script src="([^"]+)"', page.text)
        styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
        assert scripts == ["/web/app.js"] and styles == ["/web/app.css"]

        script = await client.get(scripts[0])
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "function parseSseFrame" in script.text
        style = await client.get(styles[0])
        assert style.status_code == 200
        assert style.headers["content-type"].startswith("text/css")
        for answer in (script, style):
            assert answer.headers["x-content-type-options"] == "nosniff"

        assert (await client.get("/web/nothing.js")).status_code == 404
        assert (await client.get("/web/../app.py")).status_code == 404


async def test_the_page_policy_allows_only_this_origin_but_media_from_storage(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        policy = (await client.get("/")).headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no CDN
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # The video may come from /files (this origin) or a Cloud Storage signed URL (another origin).
    assert "*" in directives["media-src"]
    assert "'self'" in directives["connect-src"]


async def test_the_api_the_spec_and_the_docs_are_unchanged(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/health")).status_code == 200
        spec = (await client.get("/openapi.json")).json()
        assert "/api/ad-agent/create-stream" in spec["paths"]
        assert not any(path == "/" or path.startswith("/web") for path in spec["paths"])  # the page is not API
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        login = await client.post("/api/auth/login", json={"username": "ann", "password": "ann-password-123"})
        assert login.status_code == 200 and login.json()["access_token"]
        unauthorized = await client.get("/api/ad-agent/jobs")
        assert unauthorized.status_code == 401
