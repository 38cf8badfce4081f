"""Every answer says `X-Content-Type-Options: nosniff` and a `Referrer-Policy`: JSON, errors, unknown paths, SSE
streams, downloads, the docs; and /docs has a Content-Security-Policy naming the hash of each inline script and style
it serves, with `frame-ancestors`."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx

from services.runtime.storage.local import LocalStorage
from tests.conftest import Server
from tests.gateway.jobs_client import body, client_for


def _assert_secured(response: httpx.Response, what: str) -> None:
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("referrer-policy") == "no-referrer", what


async def test_every_kind_of_answer_carries_nosniff_and_a_referrer_policy(
    server: Server, tmp_path: Path, avatar_data_uri: str
) -> None:
    storage = server.stack.runtime.storage
    assert isinstance(storage, LocalStorage)
    src = tmp_path / "x.mp4"
    src.write_bytes(b"\x00\x00\x00\x18ftypmp42fake video bytes")
    download = await storage.signed_url(await storage.put_file("jobs/ad_1/ad_1.mp4", src, "video/mp4"), 60)

    async with client_for(server.url, server.token) as client:
        job_id = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()["job_id"]
        await client.post(f"/api/ad-agent/jobs/{job_id}/cancel")
        answers = {
            "JSON": await client.get("/health"),
            "a job": await client.get(f"/api/ad-agent/jobs/{job_id}"),
            "a 401": await client.get("/api/ad-agent/jobs", headers={"Authorization": "Bearer nope"}),
            "a 404 of no route": await client.get("/no/such/path"),
            "a 405": await client.delete("/health"),
            "a 422": await client.post("/api/ad-agent/create", json={"script": ""}),
            "a download": await client.get(download),
            "a byte range": await client.get(download, headers={"Range": "bytes=0-3"}),
            "a 403 download": await client.get(download.replace("signature=", "signature=x")),
            "the spec": await client.get("/openapi.json"),
            "the docs": await client.get("/docs"),
            "a docs asset": await client.get("/docs/assets/swagger-ui.css"),
            "the web page": await client.get("/"),
        }
        async with client.stream("GET", f"/api/ad-agent/jobs/{job_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            _assert_secured(stream, "an SSE stream")
    for what, answer in answers.items():
        _assert_secured(answer, what)
    statuses = {what: answers[what].status_code for what in ("a 401", "a 404 of no route", "a 405", "a 422")}
    assert statuses == {"a 401": 401, "a 404 of no route": 404, "a 405": 405, "a 422": 422}
    assert answers["a byte range"].status_code == 206 and answers["a 403 download"].status_code == 403
    # Each header once: a route that sets its own (the web page does) is not given a second.
    assert answers["the web page"].headers.get_list("referrer-policy") == ["no-referrer"]
    assert answers["the web page"].headers.get_list("x-content-type-options") == ["nosniff"]


def _sha256(content: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(content.encode()).digest()).decode() + "'"


async def test_the_docs_policy_hashes_the_inline_script_and_style_it_serves(server: Server) -> None:
    page = server.stack.app.openapi_config.render_plugins[0]  # type: ignore[union-attr]
    built_at_start = dict(page.headers)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=server.url) as client:
        docs = await client.get("/docs")
    assert built_at_start["Content-Security-Policy"] == docs.headers["content-security-policy"]
    directives = (d.partition(" ") for d in docs.headers["content-security-policy"].split("; "))
    policy = {name: value for name, _, value in directives}
    inline_scripts = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
    inline_styles = re.findall(r"<style>(.*?)</style>", docs.text, re.S)
    assert len(inline_scripts) == 1 and "SwaggerUIBundle(" in inline_scripts[0] and len(inline_styles) == 1
    assert policy["script-src"].split() == ["'self'", _sha256(inline_scripts[0])]
    assert policy["style-src"].split() == ["'self'", _sha256(inline_styles[0])]
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in docs.headers["content-security-policy"]
    # Every other script comes from this app (a script with attributes is one loaded by URL).
    assert all(re.search(r'src="/docs/assets/', tag) for tag in re.findall(r"<script [^>]*>", docs.text))
    assert docs.headers["x-frame-options"] == "DENY"


async def test_a_closing_script_tag_in_the_spec_cannot_end_the_docs_script(server: Server) -> None:
    # Descriptions are free text: one naming `</script>` must stay text inside the page's script.
    schema = server.stack.app.openapi_schema
    schema.info.description = (schema.info.description or "") + " </script><script>alert(1)</script>"
    page = server.stack.app.openapi_config.render_plugins[0]
    page.build(server.stack.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=server.url) as client:
        docs = await client.get("/docs")
    assert docs.text.count("</script>") == 3  # the two assets and the page's own script
    assert "\\u003c/script>\\u003cscript>alert(1)\\u003c/script>" in docs.text
