"""A small SSE reader over httpx: parses `event:`, `id:`, `data:`, `retry:` and comment lines into messages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseMessage:
    event: str = "message"
    id: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


async def iter_sse(response: httpx.Response) -> AsyncIterator[SseMessage]:
    current = SseMessage()
    data_lines: list[str] = []
    has_fields = False
    async for line in response.aiter_lines():
        if line == "":
            if has_fields:
                current.data = "\n".join(data_lines)
                yield current
            current, data_lines, has_fields = SseMessage(), [], False
            continue
        if line.startswith(":"):
            current.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        has_fields = True
        if name == "event":
            current.event = value
        elif name == "data":
            data_lines.append(value)
        elif name == "id":
            current.id = value
        elif name == "retry" and value.isdigit():
            current.retry = int(value)
    if has_fields:
        current.data = "\n".join(data_lines)
        yield current
