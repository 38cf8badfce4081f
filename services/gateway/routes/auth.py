"""`POST /api/auth/login`: a username and password, as JSON or as the OAuth2 password form, for an access token."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import msgspec
import structlog
from litestar import Request, post
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.response import Response

from services.gateway.auth import Auth
from services.gateway.errors import RequestError
from services.gateway.json_body import json_object
from services.gateway.openapi import (
    BODY_TOO_DEEP,
    RETRY_AFTER,
    WWW_AUTHENTICATE,
    error_example,
    error_response,
    header,
    operation_class,
)
from services.gateway.plain_text import check_plain_text, no_control_pattern
from services.gateway.throttle import client_address

log = structlog.get_logger(__name__)

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


class TokenResponse(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


_USERNAME = Schema(
    type=OpenAPIType.STRING,
    min_length=1,
    pattern=no_control_pattern(),
    description="No control characters (line breaks and tabs included).",
    examples=["alice"],
)
_PASSWORD = Schema(type=OpenAPIType.STRING, min_length=1, examples=["correct horse battery"])
_CREDENTIALS = Schema(
    type=OpenAPIType.OBJECT,
    required=["username", "password"],
    properties={"username": _USERNAME, "password": _PASSWORD},
)
_FORM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["username", "password"],
    properties={
        "grant_type": Schema(type=OpenAPIType.STRING, enum=["password"]),
        "username": _USERNAME,
        "password": _PASSWORD,
    },
)


# The request body is read by hand (two media types), so Litestar cannot infer it: describe it here.
_LOGIN_BODY = RequestBody(
    required=True,
    description="The credentials, as JSON or as an OAuth2 password grant form.",
    content={
        _JSON: OpenAPIMediaType(
            schema=_CREDENTIALS,
            examples={
                "json": Example(summary="JSON", value={"username": "alice", "password": "correct horse battery"})
            },
        ),
        _FORM: OpenAPIMediaType(
            schema=_FORM_SCHEMA,
            examples={
                "form": Example(
                    summary="OAuth2 password grant",
                    value={"grant_type": "password", "username": "alice", "password": "correct horse battery"},
                )
            },
        ),
    },
)


@post(
    "/api/auth/login",
    status_code=200,
    summary="Log in: exchange a username and password for an access token",
    description=(
        'Send `{"username", "password"}` as JSON, or the OAuth2 password grant form '
        "(`application/x-www-form-urlencoded`: `grant_type=password&username=...&password=...`). "
        "The answer is a JWT to send as `Authorization: Bearer <access_token>` until it expires "
        "(`expires_in` seconds). Scripts and servers can use an API key (`adk_...`, made with "
        "`adagent keys create USER`) in the same header instead."
    ),
    tags=["Auth"],
    operation_class=operation_class(
        request_body=_LOGIN_BODY,
        headers={
            "200": {"Cache-Control": header("`no-store`: a token must not be cached.")},
            "401": WWW_AUTHENTICATE,
            "429": RETRY_AFTER,
        },
    ),
    responses={
        200: ResponseSpec(
            TokenResponse,
            description="The access token",
            generate_examples=False,
            examples=[
                Example(
                    summary="A token for one hour",
                    value={"access_token": "eyJhbGciOiJIUzI1NiIs...", "token_type": "bearer", "expires_in": 3600},
                )
            ],
        ),
        400: error_response(
            "The body is not JSON or a form, or the grant type is not `password`",
            error_example(400, "must be 'password'", "grant_type"),
            error_example(400, "the body is not valid JSON (JSON is malformed: invalid character (byte 0))"),
            BODY_TOO_DEEP,
        ),
        401: error_response(
            "Wrong username or password (with `WWW-Authenticate: Bearer`)",
            error_example(401, "wrong username or password"),
        ),
        415: error_response(
            "The body is neither JSON nor a form",
            error_example(415, "send application/json or application/x-www-form-urlencoded, not text/plain"),
        ),
        422: error_response(
            "A field is missing, empty or not a string, or the username holds a control character",
            error_example(422, "is required", "password"),
            error_example(422, "must not be empty", "username"),
            error_example(
                422,
                "contains a control character U+0000 (NUL) at position 4; control characters, line breaks and tabs "
                "included, are not allowed here",
                "username",
            ),
        ),
        429: error_response(
            "Too many failed sign-ins: for this account from your address, from your address, or for this account "
            "(which spares addresses that signed in to it before). Retry after `Retry-After` seconds; the password "
            "is not checked meanwhile",
            error_example(429, "too many failed sign-ins for this account from your address; try again in 287 s"),
            error_example(429, "too many failed sign-ins from your address; try again in 120 s"),
        ),
    },
)
async def login(request: Request[Any, Any, Any], state: State) -> Response[TokenResponse]:
    username, password = _credentials(request.headers.get("content-type", ""), await request.body())
    auth: Auth = state.auth
    name = username.strip().lower()
    answer: Response[TokenResponse] | None = None
    # 429 before the password is checked once failures from this address or on this account are too many.
    async with auth.throttle.login_attempt(name, client_address(request)) as attempt:
        if await auth.accounts.authenticate(name, password):
            try:
                token, expires_in = auth.issue_token(name)
            except ValueError:
                pass  # removed between the check and the token: as good as a wrong password
            else:
                attempt.succeeded = True
                # RFC 6749 §5.1: a response carrying a token must not be cached.
                headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
                answer = Response(TokenResponse(access_token=token, expires_in=expires_in), headers=headers)
    if answer is not None:
        return answer
    log.info("auth.login_failed", user=name[:64])
    raise NotAuthorizedException("wrong username or password", headers={"WWW-Authenticate": "Bearer"})


def _credentials(content_type: str, body: bytes) -> tuple[str, str]:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == _FORM:
        fields = _form(body)
        grant_type = fields.get("grant_type")
        # OAuth2 clients always send it; a hand-written form may leave it out, but any other grant is a mistake.
        if grant_type is not None and grant_type != "password":
            raise RequestError("grant_type", "must be 'password'", 400)
    elif media_type in ("", _JSON) or media_type.endswith("+json"):
        fields = json_object(body)
    else:
        raise RequestError(None, f"send {_JSON} or {_FORM}, not {media_type}", 415)
    username = _string(fields, "username")
    # A password is only hashed, never stored or shown: any character goes. A username is looked up and logged.
    check_plain_text("username", username)
    return username, _string(fields, "password")


def _form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise RequestError(None, "the body is not a valid form", 400) from None
    return {name: values[0] for name, values in parsed.items()}


def _string(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise RequestError(name, "is required")
    if not isinstance(value, str):
        raise RequestError(name, "must be a string")
    if not value:
        raise RequestError(name, "must not be empty")
    return value


ROUTES = [login]
