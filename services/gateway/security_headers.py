"""Headers every answer carries, whatever route, error, stream or download it is: set once, as it leaves the app."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# nosniff: a browser takes each answer for the type it names, never guessing script out of a JSON error or an
# uploaded object. no-referrer: a page or a video player following a link from an answer sends no Referer, so signed
# links and job ids stay out of other sites' logs.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


async def add_security_headers(message: Message, _: Scope) -> None:
    """`before_send` hook: adds each header the answer does not set itself (a route's own choice stands)."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        for name, value in SECURITY_HEADERS.items():
            if name not in headers:
                headers[name] = value
