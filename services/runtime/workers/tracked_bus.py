"""The bus as the pipeline's services use it: a delivery to a step's queue (one a service registered in
Runtime.steps before consuming it) is held in the worker registry while its handler runs. Everything else passes
through to the transport unchanged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from contracts.commands import AnyCommand
from contracts.events import RecordedEvent
from services.runtime.bus.port import Bus, CommandHandler, EventHandler, GiveUp, Unsubscribe
from services.runtime.workers.presence import Presence


class TrackedBus:
    def __init__(self, inner: Bus, presence: Presence, steps: Mapping[str, object]) -> None:
        self.inner = inner
        self._presence = presence
        self._steps = steps

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def publish_event(self, recorded: RecordedEvent) -> None:
        await self.inner.publish_event(recorded)

    async def send_command(self, command: AnyCommand) -> None:
        await self.inner.send_command(command)

    async def consume_events(
        self,
        queue: str,
        event_types: Sequence[str],
        handler: EventHandler,
        *,
        concurrency: int,
        single_active: bool = False,
    ) -> None:
        if queue in self._steps:
            handler = await self._presence.track(queue, handler, concurrency)
        await self.inner.consume_events(
            queue, event_types, handler, concurrency=concurrency, single_active=single_active
        )

    async def consume_commands(
        self, queue: str, command_types: Sequence[str], handler: CommandHandler, *, concurrency: int
    ) -> None:
        if queue in self._steps:
            handler = await self._presence.track(queue, handler, concurrency)
        await self.inner.consume_commands(queue, command_types, handler, concurrency=concurrency)

    async def subscribe_events(self, handler: EventHandler) -> Unsubscribe:
        return await self.inner.subscribe_events(handler)

    def set_give_up(self, hook: GiveUp) -> None:
        self.inner.set_give_up(hook)
