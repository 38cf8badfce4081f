"""In-process bus for the embedded default: the same semantics as RabbitMQ, inside one event loop.

`InMemoryBroker` plays the broker (named work queues with bindings, broadcast to subscribers); each
`InMemoryBus` is one connection to it. A consumer that closes with a message in flight returns it to the queue,
as an unacknowledged message returns to a RabbitMQ queue when its channel closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from contracts.commands import AnyCommand, command_type
from contracts.events import RecordedEvent, event_type
from services.runtime.bus.port import CommandHandler, EventHandler, GiveUp, Unsubscribe

log = structlog.get_logger(__name__)

_Delivery = tuple[Any, int]  # message, delivery attempt (1-based)


@dataclass
class _Queue:
    name: str
    items: asyncio.Queue[_Delivery] = field(default_factory=asyncio.Queue)


class InMemoryBroker:
    def __init__(self) -> None:
        self.queues: dict[str, _Queue] = {}
        self.bindings: dict[tuple[str, str], set[str]] = {}  # (kind, type) -> queue names
        self.subscribers: list[EventHandler] = []
        # Commands sent before any queue takes their type (its service still starting): delivered when one does,
        # as the RabbitMQ bus keeps re-sending a returned command until a queue is bound.
        self.unrouted_commands: dict[str, list[Any]] = {}

    def declare(self, name: str, kind: str, types: Sequence[str]) -> _Queue:
        q = self.queues.setdefault(name, _Queue(name))
        for t in types:
            self.bindings.setdefault((kind, t), set()).add(name)
            if kind == "command":
                for message in self.unrouted_commands.pop(t, []):
                    q.items.put_nowait((message, 1))
        return q

    def route(self, kind: str, type_name: str, message: Any) -> None:
        names = sorted(self.bindings.get((kind, type_name), ()))
        if not names and kind == "command":
            self.unrouted_commands.setdefault(type_name, []).append(message)
        for name in names:
            self.queues[name].items.put_nowait((message, 1))


class InMemoryBus:
    def __init__(
        self, broker: InMemoryBroker | None = None, *, delivery_limit: int = 5, retry_delay: float = 0.05
    ) -> None:
        self._broker = broker or InMemoryBroker()
        self._delivery_limit = delivery_limit
        self._retry_delay = retry_delay
        self._workers: list[asyncio.Task[None]] = []
        self._subscriptions: list[EventHandler] = []
        self._closed = False
        self._give_up: GiveUp | None = None

    def set_give_up(self, hook: GiveUp) -> None:
        self._give_up = hook

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        for handler in self._subscriptions:
            with contextlib.suppress(ValueError):
                self._broker.subscribers.remove(handler)
        self._subscriptions.clear()

    async def publish_event(self, recorded: RecordedEvent) -> None:
        self._check_open()
        self._broker.route("event", event_type(recorded.event), recorded)
        for subscriber in list(self._broker.subscribers):
            try:
                await subscriber(recorded)
            except Exception:  # a broken live view must not break the pipeline
                log.exception("bus.subscriber_failed")

    async def send_command(self, command: AnyCommand) -> None:
        self._check_open()
        self._broker.route("command", command_type(command), command)

    async def consume_events(
        self,
        queue: str,
        event_types: Sequence[str],
        handler: EventHandler,
        *,
        concurrency: int,
        single_active: bool = False,  # one process: the concurrency given is all there is
    ) -> None:
        self._start_workers(self._broker.declare(queue, "event", event_types), handler, concurrency)

    async def consume_commands(
        self, queue: str, command_types: Sequence[str], handler: CommandHandler, *, concurrency: int
    ) -> None:
        self._start_workers(self._broker.declare(queue, "command", command_types), handler, concurrency)

    async def subscribe_events(self, handler: EventHandler) -> Unsubscribe:
        self._broker.subscribers.append(handler)
        self._subscriptions.append(handler)

        async def unsubscribe() -> None:
            for registry in (self._broker.subscribers, self._subscriptions):
                with contextlib.suppress(ValueError):
                    registry.remove(handler)

        return unsubscribe

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")

    def _start_workers(self, q: _Queue, handler: Callable[[Any], Awaitable[None]], concurrency: int) -> None:
        for i in range(max(1, concurrency)):
            self._workers.append(asyncio.create_task(self._work(q, handler), name=f"bus:{q.name}:{i}"))

    async def _work(self, q: _Queue, handler: Callable[[Any], Awaitable[None]]) -> None:
        while True:
            message, attempt = await q.items.get()
            try:
                await handler(message)
            except asyncio.CancelledError:
                q.items.put_nowait((message, attempt))  # unacknowledged: back to the queue
                raise
            except Exception as exc:
                if attempt >= self._delivery_limit:
                    log.error("bus.dead_lettered", queue=q.name, attempts=attempt, error=repr(exc))
                    await _call_give_up(self._give_up, q.name, message, exc, attempt)
                else:
                    log.warning("bus.redeliver", queue=q.name, attempt=attempt, error=repr(exc))
                    await asyncio.sleep(self._retry_delay * attempt)
                    q.items.put_nowait((message, attempt + 1))


async def _call_give_up(hook: GiveUp | None, queue: str, message: Any, exc: BaseException, attempts: int) -> None:
    if hook is None:
        return
    try:
        await hook(queue, message, exc, attempts)
    except Exception:  # the message is dead-lettered either way
        log.exception("bus.give_up_failed", queue=queue)
