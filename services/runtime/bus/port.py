"""What every bus transport offers the services.

Two kinds of delivery:
- work queues (`consume_events`, `consume_commands`): durable, competing consumers, at-least-once. A message is
  acknowledged only after its handler returns, which is after the handler has published its own events; a handler
  that raises gets the message redelivered (up to the transport's delivery limit).
- broadcast (`subscribe_events`): every event reaches every subscriber in every process, at most once, for live
  views such as the gateway's SSE streams. Subscribers recover gaps from the event store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from contracts.commands import AnyCommand
from contracts.events import RecordedEvent

EventHandler = Callable[[RecordedEvent], Awaitable[None]]
CommandHandler = Callable[[AnyCommand], Awaitable[None]]
Unsubscribe = Callable[[], Awaitable[None]]
# Called once for a message whose handler failed on its last allowed delivery, before it is dead-lettered:
# (queue, message, the last error, deliveries made).
GiveUp = Callable[[str, Any, BaseException, int], Awaitable[None]]


def job_of(message: object) -> str | None:
    """The job a work queue's message is about: a command's `job_id`, or its event's."""
    job_id = getattr(getattr(message, "event", message), "job_id", None)
    return job_id if isinstance(job_id, str) else None


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop consuming, let in-flight handlers finish, close connections."""
        ...

    async def publish_event(self, recorded: RecordedEvent) -> None:
        """Returns once the transport has the event (for RabbitMQ: the broker confirmed it)."""
        ...

    async def send_command(self, command: AnyCommand) -> None: ...

    async def consume_events(
        self,
        queue: str,
        event_types: Sequence[str],
        handler: EventHandler,
        *,
        concurrency: int,
        single_active: bool = False,
    ) -> None:
        """Declare work queue `queue` bound to `event_types` and start handling up to `concurrency` at once.
        `single_active`: only one consumer across all processes receives messages at a time."""
        ...

    async def consume_commands(
        self, queue: str, command_types: Sequence[str], handler: CommandHandler, *, concurrency: int
    ) -> None: ...

    async def subscribe_events(self, handler: EventHandler) -> Unsubscribe: ...

    def set_give_up(self, hook: GiveUp) -> None:
        """What to do when a message is dead-lettered after its last delivery failed (e.g. fail its job)."""
        ...
