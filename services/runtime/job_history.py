"""Questions handlers ask of one job's history before acting, so a redelivered message does no second work."""

from __future__ import annotations

from typing import TypeVar

from contracts.events import TERMINAL_EVENTS, Event, RecordedEvent

E = TypeVar("E", bound=Event)


class JobHistory:
    def __init__(self, recorded: list[RecordedEvent]) -> None:
        self.recorded = recorded

    @property
    def events(self) -> list[Event]:
        return [r.event for r in self.recorded]

    def all(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def first(self, kind: type[E]) -> E | None:
        found = self.all(kind)
        return found[0] if found else None

    def has(self, kind: type[Event]) -> bool:
        return any(isinstance(e, kind) for e in self.events)

    @property
    def finished(self) -> bool:
        return any(isinstance(e, TERMINAL_EVENTS) for e in self.events)
