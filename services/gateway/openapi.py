"""The gateway's OpenAPI document and its interactive docs.

`/openapi.json` is the spec; `/docs` is Swagger UI, served with its assets from the `swagger-ui-py` package (no CDN:
the page works offline). This module also holds what Litestar cannot infer from the handlers' signatures: the
create bodies (read by hand), the SSE streams with their event names and payloads, the error body, and examples for
every response, so that each route's decorator only names what applies to it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
from litestar import Request, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
    Tag,
)
from litestar.response import Response
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from contracts.sse import SSE_EVENT_NAMES
from services.gateway.docs_page import SwaggerPage
from services.gateway.json_body import too_deep
from services.gateway.request_schema import request_bodies
from services.runtime.failures import DISK_FULL_REQUEST
from services.runtime.settings import Settings

TITLE = "AdAgent API"
SPEC_PATH = "/openapi.json"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

BEARER = "BearerAuth"
STREAM_TOKEN = "StreamToken"
# For the routes' `security=`: every /api/ad-agent/* route and the webhook secret need a credential; a job's events
# (and WebSocket) also take the short-lived stream token of that job in `?token=`.
BEARER_ONLY: list[SecurityRequirement] = [{BEARER: []}]
BEARER_OR_STREAM_TOKEN: list[SecurityRequirement] = [{BEARER: []}, {STREAM_TOKEN: []}]

EVENT_STREAM = "text/event-stream"
_JSON = "application/json"

DESCRIPTION = """\
Script and avatar in, finished video ad out, every step streamed live over Server-Sent Events.

## Authentication

Every `/api/ad-agent/*` route and `GET /api/auth/webhook-secret` need a credential in the `Authorization` header:

* **Bearer JWT**: `POST /api/auth/login` with a username and password (JSON, or the OAuth2 password form) answers
  `{"access_token", "token_type": "bearer", "expires_in"}`; send `Authorization: Bearer <access_token>` until it
  expires.
* **API key**: scripts and servers can send an API key (`adk_...`, made with `adagent keys create USER`) the same
  way: `Authorization: Bearer adk_...`.

A job's events URL (`GET /api/ad-agent/jobs/{job_id}/events`) and its WebSocket (`/api/ad-agent/jobs/{job_id}/ws`)
also accept `?token=<stream token>`: the `events_url` of a job's status already carries one, good for that job only
and for an hour, so a browser's `EventSource` can use the URL as it is.

Missing or bad credentials answer 401 with `WWW-Authenticate: Bearer`. Another user's job answers 404, exactly as a
job that does not exist.

## Errors

Every error has the same JSON body: `{"status_code": int, "detail": str, "field"?: str}`; `field` names the request
field at fault when there is one (the body's field, or a header such as `Idempotency-Key`).

## Two ways to make an ad

* `POST /api/ad-agent/create-stream` creates the job and streams its progress in the same response (SSE). Dropping
  the connection does not stop the job.
* `POST /api/ad-agent/create` answers 202 at once with the job's URLs: poll `GET /api/ad-agent/jobs/{job_id}`,
  follow `events_url` (SSE, resumable with `Last-Event-ID`), or open `websocket_url` (JSON messages
  `{"event", "id", "data"}`; send `{"action": "cancel"}` to cancel). Optionally with a priority, a webhook and an
  `Idempotency-Key`.
"""

EXAMPLE_JOB_ID = "ad_1795885518756927"
_EXAMPLE_STREAM_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."
_EXAMPLE_EVENTS_URL = f"/api/ad-agent/jobs/{EXAMPLE_JOB_ID}/events?token={_EXAMPLE_STREAM_TOKEN}"
_EXAMPLE_VIDEO_URL = (
    f"https://ads.example.com/files/jobs/{EXAMPLE_JOB_ID}/{EXAMPLE_JOB_ID}.mp4"
    "?expires=1795971921&signature=9Va7HvGCuTMr5uoNDLKJoAg_qBK1FJVZLFBpty3u_ck"
)


def _version() -> str:
    try:
        return importlib.metadata.version("adagent")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def swagger_ui_dir() -> Path:
    """The Swagger UI dist files shipped by the `swagger-ui-py` package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing: pip install swagger-ui-py")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """The body of every error (services.gateway.errors)."""

    status_code: int
    detail: str
    field: str | None = None


def string_param(**constraints: object) -> dict[str, object]:
    """`schema_extra=` for an optional string parameter: a header or query value is a string when sent, never null."""
    return {"one_of": None, "type": OpenAPIType.STRING, **constraints}


def error_example(status: int, detail: str, field: str | None = None, summary: str | None = None) -> Example:
    value: dict[str, object] = {"status_code": status, "detail": f"{field}: {detail}" if field else detail}
    if field is not None:
        value["field"] = field
    return Example(summary=summary or str(value["detail"]), value=value)


def error_response(description: str, *examples: Example) -> ResponseSpec:
    return ResponseSpec(ErrorBody, description=description, generate_examples=False, examples=list(examples))


# A provider the gateway calls itself (Cloud Storage: the avatar's upload, a download link's signing) said no or did
# not answer: services/gateway/errors.py provider_error_handler.
PROVIDER_FAILED = {
    502: error_response(
        "A cloud provider refused the server's own credentials or request (a configuration fault on the server)",
        error_example(
            502,
            "Google Cloud rejected the credentials (invalid_grant: the key was revoked or deleted); check "
            "GOOGLE_APPLICATION_CREDENTIALS",
            summary="A revoked service-account key",
        ),
    ),
    503: error_response(
        "A cloud provider did not answer, or failed; try again later",
        error_example(
            503,
            "Cloud Storage upload of gs://adagent-ads/jobs/ad_1795885518756927/avatar-1a2b3c4d.png kept failing: 503 "
            "Backend Error",
            summary="Cloud Storage unavailable",
        ),
    ),
}
UNAUTHORIZED = error_response(
    "No credential, or an invalid, expired or revoked one (with `WWW-Authenticate: Bearer`)",
    error_example(401, "authentication required: send Authorization: Bearer <token>", summary="No credential"),
    error_example(401, "the token or API key is invalid or has expired", summary="A bad credential"),
)
# Wrong credentials are answered 401 until one address has sent too many (services/gateway/throttle.py).
WRONG_CREDENTIALS_THROTTLED = error_response(
    "Too many invalid credentials from your address: retry after `Retry-After` seconds (a valid credential is "
    "never refused so)",
    error_example(429, "too many invalid credentials from your address; try again in 42 s"),
)
UNAUTHORIZED_STREAM = error_response(
    "No credential, or an invalid one: a bearer token or API key, or a stream token of this job",
    error_example(
        401,
        "authentication required: send Authorization: Bearer <token>, or ?token=<stream token>",
        summary="No credential",
    ),
    error_example(401, "the stream token is invalid, expired or for another job", summary="A bad stream token"),
)
JOB_NOT_FOUND = error_response(
    "No such job, or another user's", error_example(404, f"no job {EXAMPLE_JOB_ID}", summary="No such job")
)


def bad_parameter(request: str, summary: str = "A number that is not one") -> ResponseSpec:
    """Litestar's answer to a parameter that does not parse (`request`: the method and the URL), in the gateway's
    error body."""
    return error_response(
        "A parameter does not parse (e.g. a number that is not one)",
        error_example(400, f"Validation failed for {request}", summary=summary),
    )


_BODY_NOT_JSON = error_example(
    400, "the body is not valid JSON (JSON is malformed: invalid character (byte 0))", summary="Not JSON"
)
_BODY_NOT_OBJECT = error_example(400, "the body must be a JSON object", summary="Not a JSON object")
BODY_TOO_DEEP = error_example(400, too_deep("the body"), summary="JSON nested too deep")
_TOO_LARGE = (
    error_example(
        413,
        "the image is larger than 10485760 bytes (ADAGENT_MAX_IMAGE_BYTES)",
        "character_image",
        summary="The avatar is too big",
    ),
    error_example(
        413,
        "the image is too large: 8000x8000 pixels (64000000); the limit is 40000000 pixels (ADAGENT_MAX_IMAGE_PIXELS)",
        "character_image",
        summary="The avatar has too many pixels",
    ),
    error_example(413, "Request Entity Too Large", summary="The body is larger than the server takes"),
)
_INVALID_FIELD = (
    error_example(422, "is required", "script", summary="A required field is missing"),
    error_example(422, "'4:3' is not one of 16:9, 9:16, 1:1", "aspect_ratio", summary="A value outside its enum"),
    error_example(
        422, "must be a data URI like data:image/png;base64,...", "character_image", summary="Not a data URI"
    ),
    error_example(
        422,
        "the bytes are not an image this API reads (PNG, JPEG, WebP or GIF)",
        "character_image",
        summary="Not a PNG, JPEG, WebP or GIF",
    ),
    error_example(
        422,
        "'Heather Bryant' is not a voice here; valid: joe, hibari-heart (or null)",
        "voice_id",
        summary="An unknown voice",
    ),
    error_example(
        422,
        "contains a control character U+0000 (NUL) at position 13; only tab, newline and carriage return may be used",
        "script",
        summary="A control character",
    ),
)
_QUEUE_FULL = error_response(
    "You already have the most jobs allowed waiting in the queue, or your address sent too many invalid "
    "credentials; retry after `Retry-After` seconds",
    error_example(429, "you already have 20 jobs waiting; the limit is 20", summary="Too many queued jobs"),
    error_example(
        429, "too many invalid credentials from your address; try again in 42 s", summary="Too many bad credentials"
    ),
)


def create_errors(*, with_job_fields: bool) -> dict[int, ResponseSpec]:
    """The error responses of the two create routes (`/create` also validates its additive fields and keys)."""
    bad_request = [_BODY_NOT_JSON, _BODY_NOT_OBJECT, BODY_TOO_DEEP]
    invalid = list(_INVALID_FIELD)
    errors: dict[int, ResponseSpec] = {}
    if with_job_fields:
        bad_request.append(
            error_example(400, "must be 1 to 255 characters", "Idempotency-Key", summary="A bad Idempotency-Key")
        )
        invalid += [
            error_example(422, "'urgent' is not one of low, normal, high", "priority", summary="An unknown priority"),
            error_example(
                422, "must be an absolute http:// or https:// URL", "webhook_url", summary="A bad webhook URL"
            ),
        ]
    errors[400] = error_response("The body is not a JSON object, or a header is malformed", *bad_request)
    errors[401] = UNAUTHORIZED
    if with_job_fields:
        errors[409] = error_response(
            "The `Idempotency-Key` was used before with a different body",
            error_example(
                409,
                f"was used for a different request (job {EXAMPLE_JOB_ID}); use a new key",
                "Idempotency-Key",
                summary="The key was used for another request",
            ),
        )
    errors[413] = error_response("The avatar (or the whole body) is too large", *_TOO_LARGE)
    errors[422] = error_response("A field is missing or invalid; `field` names it", *invalid)
    errors[429] = _QUEUE_FULL
    errors.update(PROVIDER_FAILED)
    errors[507] = error_response(
        "The server has no disk space left to store the job; nothing was created",
        error_example(507, DISK_FULL_REQUEST, summary="The disk is full"),
    )
    return errors


# ---------------------------------------------------------------------------------------------------------------
# Success bodies that are plain dicts in the handlers
# ---------------------------------------------------------------------------------------------------------------


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok", "starting"]


def json_response(data: Any, description: str, **examples: Any) -> ResponseSpec:
    return ResponseSpec(
        data,
        description=description,
        generate_examples=False,
        examples=[Example(summary=name.replace("_", " "), value=value) for name, value in examples.items()],
    )


EXAMPLE_JOB_STATE: dict[str, object] = {
    "job_id": EXAMPLE_JOB_ID,
    "status": "running",
    "step": 2,
    "progress": 30,
    "clips_done": 0,
    "total_clips": 2,
    "priority": "normal",
    "created_at": 1795885518.756927,
    "updated_at": 1795885519.102344,
    "queue_position": None,
    "final_video_url": None,
    "error": None,
    "events_url": _EXAMPLE_EVENTS_URL,
}
EXAMPLE_JOB_DONE: dict[str, object] = {
    **EXAMPLE_JOB_STATE,
    "status": "completed",
    "step": 5,
    "progress": 100,
    "clips_done": 2,
    "updated_at": 1795885523.410871,
    "final_video_url": _EXAMPLE_VIDEO_URL,
}
EXAMPLE_JOB_QUEUED: dict[str, object] = {
    **EXAMPLE_JOB_STATE,
    "status": "queued",
    "step": 0,
    "progress": 0,
    "total_clips": 0,
    "queue_position": 3,
}
EXAMPLE_JOB_CANCELLED: dict[str, object] = {**EXAMPLE_JOB_STATE, "status": "cancelled", "error": None}
EXAMPLE_JOB_CREATED: dict[str, object] = {
    "job_id": EXAMPLE_JOB_ID,
    "status": "queued",
    "status_url": f"/api/ad-agent/jobs/{EXAMPLE_JOB_ID}",
    "events_url": _EXAMPLE_EVENTS_URL,
    "websocket_url": f"/api/ad-agent/jobs/{EXAMPLE_JOB_ID}/ws",
}


def _string(description: str, **kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Server-Sent Events
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SseEventDoc:
    name: str
    when: str
    payload: dict[str, Schema]
    example: dict[str, object]
    optional: dict[str, Schema] | None = None  # payload fields sent only sometimes


def _const(value: object, description: str | None = None) -> Schema:
    kind = OpenAPIType.INTEGER if isinstance(value, int) else OpenAPIType.STRING
    return Schema(type=kind, const=value, description=description)


def _int(description: str, minimum: int | None = None, maximum: int | None = None) -> Schema:
    return Schema(type=OpenAPIType.INTEGER, description=description, minimum=minimum, maximum=maximum)


_MESSAGE = _string("A human-readable line for a progress bar or a log.")
_CLIPS = _int("How many clips the ad has.", minimum=1)

SSE_EVENTS: tuple[SseEventDoc, ...] = (
    SseEventDoc(
        "queued",
        "First: the job is recorded (it may wait in the queue).",
        {"status": _const("queued"), "message": _MESSAGE, "progress": _const(0)},
        {"status": "queued", "message": "Queued", "progress": 0},
    ),
    SseEventDoc(
        "step1",
        "Writing the clips' video prompts from the script.",
        {"step": _const(1), "message": _MESSAGE, "progress": _const(10)},
        {"step": 1, "message": "Generating video prompts...", "progress": 10},
    ),
    SseEventDoc(
        "step1_complete",
        "The prompts are written: the ad has `total_clips` clips.",
        {"step": _const(1), "message": _MESSAGE, "total_clips": _CLIPS, "progress": _const(20)},
        {"step": 1, "message": "Generated 2 video prompts", "total_clips": 2, "progress": 20},
    ),
    SseEventDoc(
        "step2_clip",
        "Clip `current_clip` of `total_clips` is being rendered (once per clip).",
        {
            "step": _const(2),
            "message": _MESSAGE,
            "current_clip": _int("The clip being rendered, from 1.", minimum=1),
            "total_clips": _CLIPS,
            "progress": _int("30 + 20 * (current_clip - 1) / total_clips", minimum=30, maximum=49),
        },
        {"step": 2, "message": "Generating clip 1/2", "current_clip": 1, "total_clips": 2, "progress": 30},
    ),
    SseEventDoc(
        "step3",
        "Merging the clips.",
        {"step": _const(3), "message": _MESSAGE, "progress": _const(60)},
        {"step": 3, "message": "Merging video clips...", "progress": 60},
    ),
    SseEventDoc(
        "step4",
        "Enhancing and mastering the voice.",
        {"step": _const(4), "message": _MESSAGE, "progress": _const(80)},
        {"step": 4, "message": "Enhancing voice...", "progress": 80},
    ),
    SseEventDoc(
        "step5",
        "Finalizing the video.",
        {"step": _const(5), "message": _MESSAGE, "progress": _const(95)},
        {"step": 5, "message": "Finalizing...", "progress": 95},
    ),
    SseEventDoc(
        "complete",
        "Last: the ad is ready at `final_video_url` (a signed, expiring link).",
        {"status": _const("completed"), "final_video_url": _string("Where to download the MP4.")},
        {"status": "completed", "final_video_url": _EXAMPLE_VIDEO_URL},
        {"captions_url": _string("WebVTT captions of the ad, when it has them.")},
    ),
    SseEventDoc(
        "error",
        "Last: the job failed at `step`.",
        {"message": _string("What went wrong."), "step": _int("The step that failed (1 to 5).", minimum=0)},
        {"message": "the voice could not be synthesised", "step": 4},
    ),
    SseEventDoc(
        "cancelled",
        "Last: the job was cancelled.",
        {"status": _const("cancelled"), "message": _MESSAGE},
        {"status": "cancelled", "message": "cancelled by the user"},
    ),
)
assert tuple(e.name for e in SSE_EVENTS) == SSE_EVENT_NAMES, "document every SSE event of contracts.sse"

_JOB_ID_SCHEMA = _string("The job (an additive field on every event).", pattern=r"^ad_[0-9]{16,20}$")


def sse_payload_schema(event: SseEventDoc) -> Schema:
    return Schema(
        title=f"{event.name} data",
        type=OpenAPIType.OBJECT,
        required=[*event.payload, "job_id"],
        properties={**event.payload, **(event.optional or {}), "job_id": _JOB_ID_SCHEMA},
    )


def _sse_message_schema(event: SseEventDoc) -> Schema:
    return Schema(
        title=event.name,
        type=OpenAPIType.OBJECT,
        description=event.when,
        required=["event", "data"],
        properties={
            "event": _const(event.name),
            "id": _string(
                "The job's event sequence number: send it back as `Last-Event-ID` to resume.", pattern=r"^\d+$"
            ),
            "retry": _int("The reconnection delay in ms (on the first event only).", minimum=0),
            "data": _string(
                "The payload, one line of JSON.", content_media_type=_JSON, content_schema=sse_payload_schema(event)
            ),
        },
    )


def _sse_table() -> str:
    rows = []
    for event in SSE_EVENTS:
        fields = ", ".join(
            [f"`{name}`" for name in [*event.payload, "job_id"]] + [f"`{name}`?" for name in event.optional or {}]
        )
        rows.append(f"| `{event.name}` | {event.when} | {fields} |")
    return "\n".join(["| event | when | data fields |", "| --- | --- | --- |", *rows])


SSE_DESCRIPTION = f"""\
Server-Sent Events: each message has `event:` (its name), `id:` (the job's event sequence number, increasing, not
always by one) and `data:` (one line of JSON); the first also has `retry: 3000`. Comment lines (`: ping`) are
sent when nothing happened for a while. The stream ends after `complete`, `error` or `cancelled`.

{_sse_table()}

The schema describes one message, its `data` decoded from JSON (`contentSchema`). Every payload may gain fields."""


def _sse_text(events: Sequence[tuple[str, int, dict[str, object]]]) -> str:
    lines = []
    for index, (name, seq, data) in enumerate(events):
        lines += [
            f"id: {seq}",
            f"event: {name}",
            f"data: {msgspec.json.encode({**data, 'job_id': EXAMPLE_JOB_ID}).decode()}",
        ]
        if index == 0:
            lines.append("retry: 3000")
        lines.append("")
    return "\n".join(lines) + "\n"


def _example_data(name: str, **changes: object) -> dict[str, object]:
    return {**next(e.example for e in SSE_EVENTS if e.name == name), **changes}


_SUCCESS_STREAM = _sse_text(
    [
        ("queued", 1, _example_data("queued")),
        ("step1", 3, _example_data("step1")),
        ("step1_complete", 4, _example_data("step1_complete")),
        ("step2_clip", 5, _example_data("step2_clip")),
        ("step2_clip", 7, _example_data("step2_clip", message="Generating clip 2/2", current_clip=2, progress=40)),
        ("step3", 9, _example_data("step3")),
        ("step4", 11, _example_data("step4")),
        ("step5", 13, _example_data("step5")),
        ("complete", 14, _example_data("complete")),
    ]
)
_FAILED_STREAM = _sse_text(
    [
        ("queued", 1, _example_data("queued")),
        ("step1", 3, _example_data("step1")),
        ("error", 4, {"message": "the prompt writer did not answer", "step": 1}),
    ]
)
_CANCELLED_STREAM = _sse_text(
    [
        ("queued", 1, _example_data("queued")),
        ("step1", 3, _example_data("step1")),
        ("step1_complete", 4, _example_data("step1_complete")),
        ("step2_clip", 5, _example_data("step2_clip")),
        ("cancelled", 6, _example_data("cancelled")),
    ]
)


def sse_response(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={
            EVENT_STREAM: OpenAPIMediaType(
                schema=Schema(
                    title="AdProgressEvent",
                    description=SSE_DESCRIPTION,
                    one_of=[_sse_message_schema(event) for event in SSE_EVENTS],
                ),
                examples={
                    "completed": Example(summary="A two-clip ad, start to finish", value=_SUCCESS_STREAM),
                    "failed": Example(summary="A job that failed", value=_FAILED_STREAM),
                    "cancelled": Example(summary="A job cancelled while rendering", value=_CANCELLED_STREAM),
                },
            )
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Operations: what a route's decorator cannot say with summary/description/responses alone
# ---------------------------------------------------------------------------------------------------------------


def header(description: str, kind: OpenAPIType = OpenAPIType.STRING) -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=kind), description=description)


WWW_AUTHENTICATE = {"WWW-Authenticate": header("`Bearer`")}
RETRY_AFTER = {"Retry-After": header("Seconds to wait before trying again.", OpenAPIType.INTEGER)}


def operation_class(
    *,
    request_body: RequestBody | Reference | None = None,
    responses: Mapping[str, OpenAPIResponse] | None = None,
    headers: Mapping[str, Mapping[str, OpenAPIHeader]] | None = None,
) -> type[Operation]:
    """An `operation_class=` for a route: a request body to declare (for a body read by hand), responses to
    replace (e.g. an SSE stream), and headers to add to responses by status code."""

    @dataclass
    class DocumentedOperation(Operation):
        def __post_init__(self) -> None:
            if request_body is not None:
                self.request_body = request_body
            merged = {**(self.responses or {}), **(responses or {})}
            for status, extra in (headers or {}).items():
                response = merged.get(status)
                if isinstance(response, OpenAPIResponse):
                    merged[status] = OpenAPIResponse(
                        description=response.description,
                        headers={**(response.headers or {}), **extra},
                        content=response.content,
                        links=response.links,
                    )
            self.responses = dict(sorted(merged.items())) or None

    return DocumentedOperation


# ---------------------------------------------------------------------------------------------------------------
# The config, and the routes that serve the spec and the docs' assets
# ---------------------------------------------------------------------------------------------------------------


def openapi_config(settings: Settings) -> OpenAPIConfig:
    """Swagger UI at /docs (its assets from this app, no CDN); the JSON spec at /openapi.json. The create bodies
    state this gateway's limits and voices (`settings`)."""
    return OpenAPIConfig(
        title=TITLE,
        version=_version(),
        description=DESCRIPTION,
        path=DOCS_PATH,
        render_plugins=[SwaggerPage(ASSETS_PATH)],  # with its Content-Security-Policy: services.gateway.docs_page
        components=Components(
            request_bodies=request_bodies(settings),
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT or API key",
                    description="An access token from `POST /api/auth/login`, or an API key (`adk_...`).",
                ),
                STREAM_TOKEN: SecurityScheme(
                    type="apiKey",
                    name="token",
                    security_scheme_in="query",
                    description="A job's stream token, as found in its `events_url`: for that job's events and "
                    "WebSocket only.",
                ),
            },
        ),
        tags=[
            Tag(name="AI Ad Agent", description="The seed's endpoint: create an ad and stream its progress."),
            Tag(name="Jobs", description="Jobs that outlive the connection: create, list, status, events, cancel."),
            Tag(name="Auth", description="Access tokens and the webhook signing secret."),
            Tag(name="Files", description="Downloads behind signed, expiring URLs."),
            Tag(name="Operations", description="Health of the service."),
        ],
        use_handler_docstrings=False,
        create_examples=False,
    )


def docs_routes() -> list[ControllerRouterHandler]:
    """The spec at /openapi.json and the Swagger UI assets, for one app (the spec is encoded once, on first use)."""
    encoded: list[bytes] = []

    @get(SPEC_PATH, include_in_schema=False, sync_to_thread=False, media_type=MediaType.JSON)
    def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
        """The spec at the root, as JSON: the same document /docs renders."""
        if not encoded:
            encoded.append(msgspec.json.encode(request.app.openapi_schema.to_schema()))
        return Response(encoded[0], media_type=MediaType.JSON)

    assets: Router = create_static_files_router(
        path=ASSETS_PATH,
        directories=[swagger_ui_dir()],
        name="docs_assets",
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86400, public=True),
    )
    return [openapi_json, assets]
