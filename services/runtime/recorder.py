"""Record a fact: append it to the event store, then publish it. The store decides what happened; the bus tells."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.events import AnyEvent, RecordedEvent
from services.runtime.bus.port import Bus
from services.runtime.store.port import DuplicateEvent, EventStore


@dataclass(frozen=True)
class Recorded:
    recorded: RecordedEvent
    fresh: bool  # False when the store already had this event id (a redelivery or a lost race)


class Recorder:
    def __init__(self, store: EventStore, bus: Bus) -> None:
        self._store = store
        self._bus = bus

    async def record(self, event: AnyEvent) -> Recorded:
        try:
            recorded = await self._store.append(event)
            fresh = True
        except DuplicateEvent as dup:
            recorded = dup.existing
            fresh = False
        # Published again even when known: a process that died between append and publish left it unpublished,
        # and every consumer is idempotent, so a second publish is harmless while a lost one stalls the job.
        await self._bus.publish_event(recorded)
        return Recorded(recorded, fresh)
