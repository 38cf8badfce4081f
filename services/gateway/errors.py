"""A bad request names the field at fault, with an HTTP status, before any stream starts."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException


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
