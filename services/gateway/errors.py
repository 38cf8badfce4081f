"""A bad request names the field at fault, with an HTTP status, before any stream starts; a provider that refuses or
fails a call the gateway makes itself (the avatar's upload to Cloud Storage, a download link's signing) answers
502 or 503 with the provider's reason, in the same body."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from services.runtime.errors import TransientError, UserFacingError
from services.runtime.failures import public_reason


class RequestError(Exception):
    def __init__(
        self, field: str | None, message: str, status_code: int = 422, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status_code = status_code
        self.headers = headers or {}


def error_body(status_code: int, message: str, field: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"status_code": status_code, "detail": message}
    if field is not None:
        body["field"] = field
    return body


def request_error_handler(_: Request[Any, Any, Any], exc: RequestError) -> Response[dict[str, object]]:
    detail = f"{exc.field}: {exc.message}" if exc.field else exc.message
    return Response(error_body(exc.status_code, detail, exc.field), status_code=exc.status_code, headers=exc.headers)


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, object]]:
    return Response(error_body(exc.status_code, exc.detail), status_code=exc.status_code, headers=exc.headers)


def provider_error_handler(request: Request[Any, Any, Any], exc: UserFacingError) -> Response[dict[str, object]]:
    """A ProviderError (the provider said no: revoked credentials, a missing role) is 502, a TransientError (it did
    not answer, or failed) 503: the request was fine, the server could not do its part. Logged at ERROR, once."""
    status_code = 503 if isinstance(exc, TransientError) else 502
    reason = public_reason(exc, "gateway.provider_failed", method=request.method, path=request.url.path)
    return Response(error_body(status_code, reason), status_code=status_code)
