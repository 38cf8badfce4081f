"""Follow one job's events: its history from the store, then live events from the bus, in order, without gaps.

The bus broadcast is at-most-once (a gateway that reconnects may miss some), so a gap in the sequence numbers, or
a quiet spell, sends the journal back to the store: the store is the truth, the bus only makes it fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from contracts.events import TERMINAL_EVENTS, RecordedEvent
from services.runtime.bus.port import Bus, Unsubscribe
from services.runtime.store.port import EventStore


class Journal:
    def __init__(
        self, store: EventStore, bus: Bus, *, poll_seconds: float = 2.0, keepalive_seconds: float = 15.0
    ) -> None:
        self._store = store
        self.keepalive_seconds = keepalive_seconds
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._listeners: dict[str, set[asyncio.Queue[RecordedEvent]]] = {}
        self._unsubscribe: Unsubscribe | None = None

    async def start(self) -> None:
        self._unsubscribe = await self._bus.subscribe_events(self._on_event)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            await self._unsubscribe()
            self._unsubscribe = None

    async def _on_event(self, recorded: RecordedEvent) -> None:
        for queue in list(self._listeners.get(recorded.event.job_id, ())):
            queue.put_nowait(recorded)

    async def follow(
        self, job_id: str, after_seq: int = 0, *, idle_seconds: float | None = None
    ) -> AsyncIterator[RecordedEvent | None]:
        """Yield events with seq > after_seq until the terminal one; yield None after `idle_seconds` of quiet
        (default: the journal's keep-alive interval)."""
        if idle_seconds is None:
            idle_seconds = self.keepalive_seconds
        queue: asyncio.Queue[RecordedEvent] = asyncio.Queue()
        listeners = self._listeners.setdefault(job_id, set())
        listeners.add(queue)  # before reading the store, so nothing falls between the two
        last = after_seq
        last_yield = time.monotonic()
        try:
            while True:
                for recorded in await self._store.history(job_id, last):
                    last = recorded.seq
                    last_yield = time.monotonic()
                    yield recorded
                    if isinstance(recorded.event, TERMINAL_EVENTS):
                        return
                while True:
                    wait = min(self._poll_seconds, max(0.0, idle_seconds - (time.monotonic() - last_yield)))
                    try:
                        recorded = await asyncio.wait_for(queue.get(), timeout=wait)
                    except TimeoutError:
                        if time.monotonic() - last_yield >= idle_seconds:
                            last_yield = time.monotonic()
                            yield None
                        break  # poll the store
                    if recorded.seq <= last:
                        continue
                    if recorded.seq > last + 1:
                        break  # a gap: the store has what the bus lost
                    last = recorded.seq
                    last_yield = time.monotonic()
                    yield recorded
                    if isinstance(recorded.event, TERMINAL_EVENTS):
                        return
        finally:
            listeners.discard(queue)
            if not listeners:
                self._listeners.pop(job_id, None)
