"""`HEAD` wherever `GET` works (RFC 9110 §9.3.2): the GET runs and its status and headers (Content-Length,
Content-Range, ...) are sent, without a body.

Done once, before routing, for every route: Litestar routes HEAD only to handlers that declare it, and sends a body
if a GET handler answers one. As soon as the headers are out the response is complete, and the handler is told the
client went away, so a stream (an SSE feed, a large download) stops at once instead of producing a body nobody reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

from litestar.types import Message, Receive, ReceiveMessage, Scope, Send

App = Callable[[Scope, Receive, Send], Awaitable[None]]
_DISCONNECT: ReceiveMessage = {"type": "http.disconnect"}


def is_head(scope: Any) -> bool:
    return bool(scope["type"] == "http" and scope["method"] == "HEAD")


async def head_as_get(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    answered = asyncio.Event()

    async def send_headers_only(message: Message) -> None:
        if answered.is_set():
            return
        await send(message)
        if message["type"] == "http.response.start":
            answered.set()
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive_until_answered() -> ReceiveMessage:
        if answered.is_set():
            return _DISCONNECT
        waiting = asyncio.ensure_future(receive())
        done = asyncio.ensure_future(answered.wait())
        await asyncio.wait({waiting, done}, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        if waiting.done():
            return waiting.result()
        waiting.cancel()
        return _DISCONNECT

    await app(cast("Scope", {**scope, "method": "GET"}), receive_until_answered, send_headers_only)
