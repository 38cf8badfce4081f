"""Turn a followed job into SSE messages: the seed's event names and payloads, `id:` = the job's sequence number."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from litestar.response import ServerSentEventMessage

from contracts.sse import SseProjection
from services.gateway.fresh_links import with_fresh_links
from services.gateway.journal import Journal
from services.runtime.context import Runtime

RETRY_MS = 3000
# A comment and nothing else: Litestar fills `data` with "" by default, and a block with an empty `data:` line is
# a `message` to EventSource and a JSONDecodeError to the seed's Python client.
KEEP_ALIVE = ServerSentEventMessage(comment="ping", data=None)


async def sse_messages(
    rt: Runtime, journal: Journal, job_id: str, *, last_event_id: int = 0, keepalive_seconds: float | None = None
) -> AsyncIterator[ServerSentEventMessage]:
    # The projection folds the whole history (clip numbering depends on it); only what follows
    # `last_event_id` is sent.
    projection = SseProjection()
    first = True
    async for recorded in journal.follow(job_id, 0, idle_seconds=keepalive_seconds):
        if recorded is None:
            yield KEEP_ALIVE
            continue
        sse = projection.apply(recorded)
        if sse is None or sse.id <= last_event_id:
            continue
        sse = await with_fresh_links(rt, sse, recorded)
        yield ServerSentEventMessage(
            event=sse.event,
            id=sse.id,
            data=json.dumps(sse.data, ensure_ascii=False),
            retry=RETRY_MS if first else None,
        )
        first = False
