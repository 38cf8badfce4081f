"""A small threaded HTTP server for fakes: routes by method and path pattern, a log of every request, and scripted
faults (answer the next N matching requests with a given status) so tests can provoke 429s, 4xx and 5xx."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route's pattern
    at: float = field(default_factory=time.monotonic)  # when it arrived

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            headers.setdefault("Content-Type", "application/json; charset=UTF-8")
            return json.dumps(self.body).encode(), headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        return self.body, headers


Handler = Callable[[Request], Response]


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    response: Response
    remaining: int


class FakeServer:
    """Start with `start()` (or as a context manager); `url` is its base URL. Subclasses add routes in `__init__`."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[_Fault] = []
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def fail_next(self, method: str, pattern: str, response: Response, times: int = 1) -> None:
        """Answer the next `times` requests matching `method` and `pattern` (a regex searched in the path) with
        `response`, before any route sees them."""
        with self.lock:
            self._faults.append(_Fault(method.upper(), re.compile(pattern), response, times))

    def calls(self, method: str, pattern: str) -> list[Request]:
        rx = re.compile(pattern)
        with self.lock:
            return [r for r in self.requests if r.method == method.upper() and rx.search(r.path)]

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "the fake server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=type(self).__name__
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch ----------------------------------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(h)
        else:
            body = h.rfile.read(length) if length else b""
        request = Request(
            method=h.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        with self.lock:
            self.requests.append(request)
            fault = next((f for f in self._faults if f.remaining > 0 and _matches(f, request)), None)
            if fault is not None:
                fault.remaining -= 1
        if fault is not None:
            response = fault.response
        else:
            response = self._route(request)
        data, headers = response.encoded()
        h.send_response(response.status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _route(self, request: Request) -> Response:
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            match = pattern.fullmatch(request.path)
            if match:
                request.params = {k: v for k, v in match.groupdict().items() if v is not None}
                try:
                    return handler(request)
                except Exception as exc:  # a bug in the fake must show up in the test, not as a hang
                    return Response(500, {"error": {"code": 500, "message": f"fake crashed: {exc!r}"}})
        return Response(404, {"error": {"code": 404, "message": f"no route for {request.method} {request.path}"}})


def _matches(fault: _Fault, request: Request) -> bool:
    return fault.method == request.method and fault.pattern.search(request.path) is not None


def _read_chunked(h: BaseHTTPRequestHandler) -> bytes:
    out = bytearray()
    while True:
        size = int(h.rfile.readline().strip().split(b";")[0], 16)
        if size == 0:
            h.rfile.readline()
            return bytes(out)
        out += h.rfile.read(size)
        h.rfile.readline()


def google_error(code: int, status: str, message: str, *, retry_after_s: float | None = None) -> Response:
    """An error body the way Google APIs send them (google.rpc.Status inside `error`); `retry_after_s` adds the
    google.rpc.RetryInfo detail that a 429 from Gemini carries (`"retryDelay": "40s"`)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if retry_after_s is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after_s:g}s"},
        ]
    return Response(code, {"error": error})
