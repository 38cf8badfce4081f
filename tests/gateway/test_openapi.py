"""The OpenAPI document and the docs page, over real HTTP: a valid OpenAPI 3.1 spec at /openapi.json with a summary
and examples for every operation and the bearer scheme on the protected routes, SSE schemas that real streams and
the documented examples satisfy, and Swagger UI at /docs whose every asset the app serves itself."""

from __future__ import annotations

import importlib.metadata
import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from contracts.sse import SSE_EVENT_NAMES
from services.cli.sse_client import SseMessage, iter_sse
from tests.conftest import Server
from tests.gateway.jobs_client import client_for

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PROTECTED_PREFIXES = ("/api/ad-agent/", "/api/auth/webhook-secret")
SSE_OPERATIONS = (("/api/ad-agent/create-stream", "post"), ("/api/ad-agent/jobs/{job_id}/events", "get"))


async def _spec(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    spec: dict[str, Any] = response.json()
    return spec


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _request_body(spec: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    """The operation's request body, also when it is a component (the create bodies: this gateway's limits)."""
    body: dict[str, Any] = spec["paths"][path][method]["requestBody"]
    if "$ref" in body:
        body = spec["components"]["requestBodies"][body["$ref"].removeprefix("#/components/requestBodies/")]
    return body


def _media_examples(media: dict[str, Any]) -> list[Any]:
    found = [example["value"] for example in (media.get("examples") or {}).values() if "value" in example]
    return found + ([media["example"]] if "example" in media else [])


def _examples(operation: dict[str, Any]) -> list[Any]:
    """Every example of an operation: request body, parameters and responses."""
    found: list[Any] = []
    for media in (operation.get("requestBody") or {}).get("content", {}).values():
        found += _media_examples(media)
    for parameter in operation.get("parameters") or []:
        found += [e["value"] for e in (parameter.get("examples") or {}).values()]
        found += parameter.get("schema", {}).get("examples") or []
    for response in operation["responses"].values():
        for media in (response.get("content") or {}).values():
            found += _media_examples(media)
    return found


def _sse_schema(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    media: dict[str, Any] = spec["paths"][path][method]["responses"]["200"]["content"]["text/event-stream"]
    return media


def _check_sse_message(schema: dict[str, Any], message: SseMessage) -> None:
    """One message against the documented schema: the message itself, then its JSON data (`contentSchema`)."""
    as_object: dict[str, Any] = {"event": message.event, "data": message.data}
    if message.id is not None:
        as_object["id"] = message.id
    if message.retry is not None:
        as_object["retry"] = message.retry
    matching = [option for option in schema["oneOf"] if option["properties"]["event"]["const"] == message.event]
    assert len(matching) == 1, f"{message.event} is not documented"
    OAS31Validator(schema).validate(as_object)
    OAS31Validator(matching[0]["properties"]["data"]["contentSchema"]).validate(message.json())


async def _parse_sse(text: str) -> list[SseMessage]:
    return [message async for message in iter_sse(httpx.Response(200, content=text.encode()))]


async def test_openapi_json_is_a_valid_openapi_3_1_document(server: Server) -> None:
    spec = await _spec(server)
    assert spec["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(spec).validate()
    assert spec["info"]["title"] == "AdAgent API"
    assert spec["info"]["version"] == importlib.metadata.version("adagent")
    description = spec["info"]["description"]
    assert "POST /api/auth/login" in description and "adk_" in description and "Bearer" in description
    # The docs' own routes stay out of the document.
    assert not [path for path in spec["paths"] if path.startswith("/docs") or path == "/openapi.json"]


async def test_every_operation_has_a_summary_and_an_example(server: Server) -> None:
    spec = await _spec(server)
    operations = _operations(spec)
    assert len(operations) >= 10
    for path, method, operation in operations:
        assert operation.get("summary"), f"{method.upper()} {path} has no summary"
        assert _examples(operation), f"{method.upper()} {path} has no example"


async def test_error_examples_have_the_real_error_body(server: Server) -> None:
    spec = await _spec(server)
    checked = 0
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if not status.startswith("4") or "application/json" not in (response.get("content") or {}):
                continue  # (a 503 of /health is its own status body)
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, f"{method} {path} {status}"
            for example in _media_examples(media):
                assert set(example) <= {"status_code", "detail", "field"} and example["status_code"] == int(status)
                assert isinstance(example["detail"], str)
                if "field" in example:
                    assert example["detail"].startswith(f"{example['field']}: ")
                checked += 1
    assert checked >= 30
    error_body = spec["components"]["schemas"]["ErrorBody"]
    assert set(error_body["properties"]) == {"status_code", "detail", "field"}
    assert set(error_body["required"]) == {"status_code", "detail"}


async def test_protected_routes_name_the_bearer_scheme_and_do_answer_401_without_it(server: Server) -> None:
    spec = await _spec(server)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerAuth"]["type"] == "http" and schemes["BearerAuth"]["scheme"] == "bearer"
    assert schemes["StreamToken"] == {**schemes["StreamToken"], "type": "apiKey", "in": "query", "name": "token"}
    protected = []
    for path, method, operation in _operations(spec):
        security = operation.get("security") or []
        if path.startswith(PROTECTED_PREFIXES):
            assert {"BearerAuth": []} in security, f"{method.upper()} {path} does not name the bearer scheme"
            assert "401" in operation["responses"], f"{method.upper()} {path} does not document its 401"
            protected.append((path, method))
        else:
            assert not security, f"{method.upper()} {path} needs no credential"
    assert len(protected) >= 7
    assert spec["paths"]["/api/ad-agent/jobs/{job_id}/events"]["get"]["security"] == [
        {"BearerAuth": []},
        {"StreamToken": []},
    ]
    async with httpx.AsyncClient(base_url=server.url) as client:
        for path, method in protected:
            response = await client.request(method, path.replace("{job_id}", "ad_1795885518756927"), json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"


async def test_the_create_bodies_are_documented_with_the_seed_fields(server: Server) -> None:
    spec = await _spec(server)
    bodies = {}
    for path in ("/api/ad-agent/create-stream", "/api/ad-agent/create"):
        request_body = _request_body(spec, path)
        assert request_body["required"] is True
        bodies[path] = request_body["content"]["application/json"]
    stream, create = (bodies[p]["schema"] for p in ("/api/ad-agent/create-stream", "/api/ad-agent/create"))
    seed = {"script", "character_image", "character_name", "voice_id", "aspect_ratio", "resolution"}
    assert set(stream["properties"]) == seed and set(stream["required"]) == {"script", "character_image"}
    assert set(create["properties"]) == seed | {"priority", "webhook_url", "webhook_events"}

    def enum(schema: dict[str, Any]) -> list[str]:
        return next(option["enum"] for option in schema["oneOf"] if "enum" in option)

    assert enum(stream["properties"]["aspect_ratio"]) == ["16:9", "9:16", "1:1"]
    assert enum(stream["properties"]["resolution"]) == ["720p", "1080p"]
    assert enum(create["properties"]["priority"]) == ["low", "normal", "high"]
    assert create["properties"]["webhook_events"]["items"]["enum"] == list(SSE_EVENT_NAMES)
    for media in bodies.values():
        for example in _media_examples(media):
            assert example["character_image"].startswith("data:image/png;base64,")
            OAS31Validator(media["schema"]).validate(example)
    login = spec["paths"]["/api/auth/login"]["post"]["requestBody"]["content"]
    assert _media_examples(login["application/json"]) and _media_examples(login["application/x-www-form-urlencoded"])


async def test_the_sse_schemas_list_every_event_and_the_examples_satisfy_them(server: Server) -> None:
    spec = await _spec(server)
    for path, method in SSE_OPERATIONS:
        media = _sse_schema(spec, path, method)
        schema = media["schema"]
        assert [option["properties"]["event"]["const"] for option in schema["oneOf"]] == list(SSE_EVENT_NAMES)
        for name in SSE_EVENT_NAMES:
            assert f"| `{name}` |" in schema["description"]
        for option in schema["oneOf"]:
            payload = option["properties"]["data"]["contentSchema"]
            assert "job_id" in payload["required"] and payload["properties"]
        ends = set()
        for example in media["examples"].values():
            messages = await _parse_sse(example["value"])
            assert messages[0].event == "queued" and messages[0].retry == 3000
            for message in messages:
                _check_sse_message(schema, message)
            ends.add(messages[-1].event)
        assert ends == {"complete", "error", "cancelled"}


async def test_a_real_stream_from_the_documented_example_satisfies_the_documented_schema(server: Server) -> None:
    spec = await _spec(server)
    example = _request_body(spec, "/api/ad-agent/create-stream")["content"]["application/json"]
    schema = _sse_schema(spec, "/api/ad-agent/create-stream", "post")["schema"]
    async with client_for(server.url, server.token) as client:
        request = example["examples"]["full"]["value"]
        async with client.stream("POST", "/api/ad-agent/create-stream", json=request) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            job_id = response.headers["x-job-id"]
            messages = [message async for message in iter_sse(response) if message.data]
        for message in messages:
            _check_sse_message(schema, message)
        assert messages[-1].event == "complete", messages[-1]
        # The events route replays the same stream, which its own schema documents as well.
        events_schema = _sse_schema(spec, "/api/ad-agent/jobs/{job_id}/events", "get")["schema"]
        async with client.stream("GET", f"/api/ad-agent/jobs/{job_id}/events") as response:
            replayed = [message async for message in iter_sse(response) if message.data]
        assert [m.event for m in replayed] == [m.event for m in messages]
        for message in replayed:
            _check_sse_message(events_schema, message)


class _AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") if tag == "script" else values.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


async def test_docs_is_swagger_ui_served_entirely_by_the_app(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "SwaggerUIBundle" in page.text and "AdAgent API" in page.text
        links = _AssetLinks()
        links.feed(page.text)
        assert len(links.urls) >= 4  # icon, CSS, the bundle and the standalone preset
        own = urlsplit(server.url).netloc
        types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
        for url in links.urls:
            absolute = urljoin(f"{server.url}/docs", url)
            assert urlsplit(absolute).netloc == own, f"{url} is not served by the app"
            asset = await client.get(absolute)
            assert asset.status_code == 200, url
            assert types[url[url.rfind(".") :]] in asset.headers["content-type"], url
            assert len(asset.content) > 100, url
        # The page carries the same document as /openapi.json.
        spec = (await client.get("/openapi.json")).json()
        start = page.text.index("spec: ") + len("spec: ")
        embedded, _ = json.JSONDecoder().raw_decode(page.text[start:])
        assert embedded == spec


# The seed's README links its docs here: Swagger UI opens `#/<tag>/<operationId>` when deep linking is on.
SEED_DOCS_LINK = "/docs#/AI%20Ad%20Agent/create_ad_stream_api_ad_agent_create_stream_post"


async def test_the_seed_docs_link_names_the_create_stream_operation(server: Server) -> None:
    spec = await _spec(server)
    tag, operation_id = (unquote(part) for part in SEED_DOCS_LINK.split("#/")[1].split("/"))
    operation = spec["paths"]["/api/ad-agent/create-stream"]["post"]
    assert (operation["operationId"], operation["tags"]) == (operation_id, [tag])
    assert tag in [t["name"] for t in spec["tags"]]
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert ids.count(operation_id) == 1
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get(SEED_DOCS_LINK.split("#")[0])
    assert page.status_code == 200
    assert re.search(r"\bdeepLinking:\s*true\b", page.text), "Swagger UI is not told to follow #/tag/operation links"
