"""RabbitMQ transport: the `Bus` port over aio-pika, with the in-process bus's semantics across processes.

Topology for namespace `ns` (all names deterministic, so `delete_namespace` can find them from a fresh process):

- `ns.events`   durable topic exchange, routing key = event type name (`ClipRendered`)
- `ns.commands` durable direct exchange, routing key = command type name (`RenderClip`)
- `ns.dlx`      durable direct exchange for poison messages, routing key = the work queue's name
- `ns.<queue>`  durable quorum work queue per `consume_*` name, bound to its types, with
                `x-delivery-limit` and dead-lettering to `ns.dlx` / `<queue>`
- `ns.<queue>.dead` durable quorum queue bound to `ns.dlx` with routing key `<queue>`: where poison messages wait
- `ns.live.<hex>` one exclusive, auto-delete classic queue per `subscribe_events` call, bound with `#`

Work queues are quorum queues because they are replicated and count deliveries themselves, so a message that
kills its consumer every time (the handler never gets to nack it) still ends in the dead-letter queue. The broker's
limit is one more than the bus's: a delivery past the bus's limit can only follow deliveries whose consumers died
holding the message, and it is spent on giving up (the job gets its `error`) before the message is dead-lettered. Quorum
queues cannot be exclusive or auto-delete, which is why the broadcast queues are classic ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aio_pika
import aiormq
import msgspec
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from contracts.codec import decode_command, decode_recorded, encode
from contracts.commands import AnyCommand, command_type
from contracts.events import RecordedEvent, event_type
from services.runtime.bus.port import CommandHandler, EventHandler, GiveUp, Unsubscribe
from services.runtime.errors import TransientError, UserFacingError

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_QUEUES: tuple[str, ...] = ("scheduler", "webhooks", "prompter", "renderer", "merger", "voice")

_CONTENT_TYPE = "application/json"
# Unacknowledged broadcast messages a slow live view may hold; beyond that the backlog waits in its broker queue
# instead of in this process's memory.
_LIVE_PREFETCH = 256
# Settling or cancelling on a channel whose connection just dropped must not hang close().
_OP_TIMEOUT = 5.0
# How long a publish waits for the robust connection to come back before giving up (aio-pika retries the
# connection every 5 s by default), and how often it looks.
_RECONNECT_WAIT = 30.0
_RECONNECT_POLL = 0.2
# Waits between tries of a command no queue takes yet (a consumer still starting): about a minute in all.
_UNROUTABLE_WAITS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# A publish failing with these never got a confirm because the link was down, not because the broker refused it.
_RECONNECTING: tuple[type[BaseException], ...] = (
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
)
# Errors that mean "the channel or connection is gone": the broker then returns unacked messages by itself.
_CHANNEL_GONE: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    TimeoutError,
)


def events_exchange(namespace: str) -> str:
    return f"{namespace}.events"


def commands_exchange(namespace: str) -> str:
    return f"{namespace}.commands"


def dead_letter_exchange(namespace: str) -> str:
    return f"{namespace}.dlx"


def work_queue(namespace: str, queue: str) -> str:
    return f"{namespace}.{queue}"


def dead_letter_queue(namespace: str, queue: str) -> str:
    return f"{namespace}.{queue}.dead"


def _redacted(url: str) -> str:
    """The URL as it may appear in logs: no password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{parts.path}"


def _attempt(message: AbstractIncomingMessage) -> int:
    """1-based delivery attempt, from the count the quorum queue keeps across consumers and processes."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return (count if isinstance(count, int) else 0) + 1


@dataclass
class _Consumer:
    channel: AbstractChannel
    queue: AbstractQueue
    tag: str


@dataclass
class _Subscription:
    channel: AbstractChannel
    queue: AbstractQueue
    worker: asyncio.Task[None]
    tag: str | None = None
    closed: bool = False


@dataclass
class _Topology:
    connection: AbstractRobustConnection
    channel: AbstractChannel  # publishing only, with publisher confirms
    events: AbstractExchange
    commands: AbstractExchange
    consumers: list[_Consumer] = field(default_factory=list)
    subscriptions: list[_Subscription] = field(default_factory=list)


class RabbitMqBus:
    def __init__(
        self,
        url: str,
        *,
        namespace: str = "adagent",
        delivery_limit: int = 5,
        retry_delay: float = 0.05,
        close_grace: float = 0.0,
    ) -> None:
        """`close_grace`: seconds `close()` lets in-flight handlers finish before cancelling them. The default
        cancels at once, like the in-memory bus; a cancelled handler's message is not acknowledged, so the broker
        hands it to another consumer."""
        if delivery_limit < 1:
            raise ValueError("delivery_limit must be at least 1")
        self._url = url
        self._namespace = namespace
        self._delivery_limit = delivery_limit
        self._retry_delay = retry_delay
        self._close_grace = close_grace
        self._topology: _Topology | None = None
        self._closing = False
        self._give_up: GiveUp | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._start_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def set_give_up(self, hook: GiveUp) -> None:
        self._give_up = hook

    async def start(self) -> None:
        async with self._start_lock:
            if self._topology is not None:
                return
            connection = await aio_pika.connect_robust(
                self._url, client_properties={"connection_name": f"adagent:{self._namespace}"}
            )
            try:
                channel = await connection.channel(publisher_confirms=True)
                events, commands = await _declare_exchanges(channel, self._namespace)
            except BaseException:
                await connection.close()
                raise
            self._topology = _Topology(connection, channel, events, commands)
            self._closing = False
            log.info("bus.connected", broker=_redacted(self._url), namespace=self._namespace)

    async def close(self) -> None:
        topology = self._topology
        if topology is None or self._closing:
            return
        self._closing = True
        # Stop deliveries first so nothing new starts while in-flight handlers drain.
        for consumer in topology.consumers:
            with contextlib.suppress(*_CHANNEL_GONE):
                await asyncio.wait_for(consumer.queue.cancel(consumer.tag), _OP_TIMEOUT)
        for subscription in list(topology.subscriptions):
            await self._unsubscribe(topology, subscription)
        # Publishing stays possible until here: a handler finishing in the grace period publishes its events.
        await self._drain_inflight()
        self._topology = None
        # Closing the connection is what returns the cancelled handlers' unacknowledged messages to their queues.
        with contextlib.suppress(*_CHANNEL_GONE):
            await asyncio.wait_for(topology.connection.close(), _OP_TIMEOUT)
        log.info("bus.closed", namespace=self._namespace)

    async def _drain_inflight(self) -> None:
        tasks = set(self._inflight)
        if not tasks:
            return
        if self._close_grace > 0:
            _, pending = await asyncio.wait(tasks, timeout=self._close_grace)
        else:
            pending = tasks
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pending:
            log.info("bus.handlers_cancelled", count=len(pending), namespace=self._namespace)

    def _require(self) -> _Topology:
        if self._topology is None:
            raise RuntimeError("bus is not started (or already closed)")
        return self._topology

    # -- publishing ------------------------------------------------------------------------------------------

    async def publish_event(self, recorded: RecordedEvent) -> None:
        topology = self._require()
        name = event_type(recorded.event)
        message = _message(encode(recorded), message_id=recorded.event.event_id, type_name=name)
        # Not mandatory: an event nobody is bound to yet is not an error, as in the in-memory broker.
        await self._publish(topology.events, message, name, mandatory=False)

    async def send_command(self, command: AnyCommand) -> None:
        topology = self._require()
        name = command_type(command)
        # Returned by the broker when no queue is bound to the command's type yet: the consuming service is still
        # starting (its queue is declared when it first consumes), so try again for a while, then let the sender's
        # own message be redelivered. Dropping it would lose the work without a word.
        for wait in (*_UNROUTABLE_WAITS, None):
            message = _message(encode(command), message_id=command.command_id, type_name=name)
            confirmation = await self._publish(topology.commands, message, name, mandatory=True)
            if isinstance(confirmation, aiormq.spec.Basic.Ack):
                return
            if wait is None:
                break
            log.info("bus.command_waiting_for_a_queue", command_type=name, command_id=command.command_id, wait=wait)
            await asyncio.sleep(wait)
        log.warning("bus.command_unroutable", command_type=name, command_id=command.command_id)
        raise TransientError(f"no queue takes {name} commands: is the service that consumes them running?")

    async def _publish(
        self, exchange: AbstractExchange, message: aio_pika.Message, routing_key: str, *, mandatory: bool
    ) -> object:
        """Publish and await the broker's confirm, riding out a reconnect of the robust connection.

        A publish that was cut off may have reached the broker anyway, so a retry can duplicate it; consumers
        already tolerate that (at-least-once, deterministic ids)."""
        deadline = asyncio.get_running_loop().time() + _RECONNECT_WAIT
        waiting = False
        while True:
            try:
                return await exchange.publish(message, routing_key=routing_key, mandatory=mandatory)
            except _RECONNECTING as exc:
                if self._topology is None or asyncio.get_running_loop().time() >= deadline:
                    raise
                if not waiting:
                    waiting = True
                    log.warning("bus.publish_waiting_for_reconnect", routing_key=routing_key, error=repr(exc))
                await asyncio.sleep(_RECONNECT_POLL)

    # -- work queues -----------------------------------------------------------------------------------------

    async def consume_events(
        self,
        queue: str,
        event_types: Sequence[str],
        handler: EventHandler,
        *,
        concurrency: int,
        single_active: bool = False,
    ) -> None:
        await self._consume(
            queue, events_exchange(self._namespace), event_types, decode_recorded, handler, concurrency, single_active
        )

    async def consume_commands(
        self, queue: str, command_types: Sequence[str], handler: CommandHandler, *, concurrency: int
    ) -> None:
        await self._consume(
            queue, commands_exchange(self._namespace), command_types, decode_command, handler, concurrency
        )

    async def _consume(
        self,
        queue: str,
        exchange: str,
        routing_keys: Iterable[str],
        decode: Callable[[bytes], T],
        handler: Callable[[T], Awaitable[None]],
        concurrency: int,
        single_active: bool = False,
    ) -> None:
        topology = self._require()
        concurrency = max(1, concurrency)
        # A channel per consumer makes the prefetch (= how many handlers run at once) this consumer's own.
        channel = await topology.connection.channel()
        try:
            await channel.set_qos(prefetch_count=concurrency)
            declared = await _declare_work_queue(channel, self._namespace, queue, self._delivery_limit, single_active)
            for key in routing_keys:
                await declared.bind(exchange, routing_key=key)

            async def on_message(message: AbstractIncomingMessage) -> None:
                if self._closing or self._topology is not topology:
                    # Delivered while close() was stopping this consumer: leave it unacknowledged, so the broker
                    # gives it to another consumer when the connection closes.
                    return
                await self._track(self._handle(declared.name, message, decode, handler))

            tag = await declared.consume(on_message, no_ack=False)
        except BaseException:
            with contextlib.suppress(*_CHANNEL_GONE):
                await channel.close()
            raise
        topology.consumers.append(_Consumer(channel, declared, tag))
        log.info("bus.consuming", queue=declared.name, exchange=exchange, concurrency=concurrency)

    async def _track(self, work: Awaitable[None]) -> None:
        """Run a delivery's work in the current task (aio-pika's task for this delivery), known to close()."""
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            await work
        finally:
            self._inflight.discard(task)

    async def _handle(
        self,
        queue: str,
        message: AbstractIncomingMessage,
        decode: Callable[[bytes], T],
        handler: Callable[[T], Awaitable[None]],
    ) -> None:
        attempt = _attempt(message)
        try:
            payload = decode(message.body)
        except msgspec.DecodeError as exc:
            # Retrying cannot make a malformed body decode: straight to the dead-letter queue.
            log.error("bus.undecodable", queue=queue, message_id=message.message_id, error=repr(exc))
            await _settle(message.reject(requeue=False), queue)
            return
        if attempt > self._delivery_limit:
            # A handler that raises gives up at the limit, so every delivery before this one ended with its consumer
            # gone (crashed, killed) while holding the message. Running it again would likely kill this one too.
            died = UserFacingError("the process working on it stopped before finishing, every time (crashed or killed)")
            await self._give_up_on(queue, message, payload, died, attempt - 1)
            return
        try:
            await handler(payload)
        except Exception as exc:
            # CancelledError is not an Exception: a handler cancelled by close() or a dropped connection leaves
            # its message unacknowledged, and the broker redelivers it once the channel is gone.
            if attempt >= self._delivery_limit:
                await self._give_up_on(queue, message, payload, exc, attempt)
            else:
                log.warning(
                    "bus.redeliver", queue=queue, message_id=message.message_id, attempt=attempt, error=repr(exc)
                )
                # Holding the prefetch slot while backing off keeps a failing message from spinning hot.
                await asyncio.sleep(self._retry_delay * attempt)
                await _settle(message.nack(requeue=True), queue)
            return
        await _settle(message.ack(), queue)

    async def _give_up_on(
        self, queue: str, message: AbstractIncomingMessage, payload: Any, error: BaseException, attempts: int
    ) -> None:
        """Tell the give-up hook (which ends the job with an `error`), then dead-letter the message, where it waits
        for an operator."""
        log.error("bus.dead_lettered", queue=queue, message_id=message.message_id, attempts=attempts, error=repr(error))
        if self._give_up is not None:
            try:
                await self._give_up(queue.removeprefix(f"{self._namespace}."), payload, error, attempts)
            except Exception:  # the message is dead-lettered either way
                log.exception("bus.give_up_failed", queue=queue)
        await _settle(message.reject(requeue=False), queue)

    # -- broadcast -------------------------------------------------------------------------------------------

    async def subscribe_events(self, handler: EventHandler) -> Unsubscribe:
        topology = self._require()
        channel = await topology.connection.channel()
        buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        try:
            await channel.set_qos(prefetch_count=_LIVE_PREFETCH)
            # Named by us, not by the broker: a robust reconnect re-declares it, and `amq.gen-*` names may not be
            # declared by clients.
            queue = await channel.declare_queue(
                f"{self._namespace}.live.{uuid.uuid4().hex}", durable=False, exclusive=True, auto_delete=True
            )
            await queue.bind(events_exchange(self._namespace), routing_key="#")
        except BaseException:
            with contextlib.suppress(*_CHANNEL_GONE):
                await channel.close()
            raise
        worker = asyncio.create_task(self._live(queue.name, buffer, handler), name=f"bus:{queue.name}")
        subscription = _Subscription(channel, queue, worker)
        topology.subscriptions.append(subscription)

        async def on_message(message: AbstractIncomingMessage) -> None:
            # One worker drains the buffer, so the handler sees events in the order the broker delivered them.
            buffer.put_nowait(message)

        try:
            subscription.tag = await queue.consume(on_message, no_ack=False)
        except BaseException:
            await self._unsubscribe(topology, subscription)
            raise

        async def unsubscribe() -> None:
            await self._unsubscribe(topology, subscription)

        return unsubscribe

    async def _live(self, queue: str, buffer: asyncio.Queue[AbstractIncomingMessage], handler: EventHandler) -> None:
        while True:
            message = await buffer.get()
            try:
                await handler(decode_recorded(message.body))
            except Exception:  # a broken live view must not stop the stream; it recovers from the event store
                log.exception("bus.subscriber_failed", queue=queue)
            # Broadcast is at most once: the ack only frees the prefetch slot.
            await _settle(message.ack(), queue)

    async def _unsubscribe(self, topology: _Topology, subscription: _Subscription) -> None:
        if subscription.closed:
            return
        subscription.closed = True
        with contextlib.suppress(ValueError):
            topology.subscriptions.remove(subscription)
        if subscription.tag is not None:
            with contextlib.suppress(*_CHANNEL_GONE):
                await asyncio.wait_for(subscription.queue.cancel(subscription.tag), _OP_TIMEOUT)
        subscription.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscription.worker
        with contextlib.suppress(*_CHANNEL_GONE):
            await asyncio.wait_for(subscription.queue.delete(if_unused=False, if_empty=False), _OP_TIMEOUT)
        with contextlib.suppress(*_CHANNEL_GONE):
            await asyncio.wait_for(subscription.channel.close(), _OP_TIMEOUT)


def _message(body: bytes, *, message_id: str, type_name: str) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type=_CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=type_name,
    )


async def _settle(operation: Awaitable[None], queue: str) -> None:
    try:
        await asyncio.wait_for(operation, _OP_TIMEOUT)
    except _CHANNEL_GONE as exc:
        # The channel died under the handler; the broker has already put the message back for redelivery.
        log.warning("bus.settle_failed", queue=queue, error=repr(exc))


async def _declare_exchanges(channel: AbstractChannel, namespace: str) -> tuple[AbstractExchange, AbstractExchange]:
    events = await channel.declare_exchange(events_exchange(namespace), aio_pika.ExchangeType.TOPIC, durable=True)
    commands = await channel.declare_exchange(commands_exchange(namespace), aio_pika.ExchangeType.DIRECT, durable=True)
    await channel.declare_exchange(dead_letter_exchange(namespace), aio_pika.ExchangeType.DIRECT, durable=True)
    return events, commands


async def _declare_work_queue(
    channel: AbstractChannel, namespace: str, queue: str, delivery_limit: int, single_active: bool = False
) -> AbstractQueue:
    """Declare `ns.<queue>` and its dead-letter queue. Arguments must match on every declaration (the broker
    refuses a redeclaration with different ones), so every process must use the same delivery limit."""
    await _declare_exchanges(channel, namespace)
    dlx = dead_letter_exchange(namespace)
    dead = await channel.declare_queue(
        dead_letter_queue(namespace, queue), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead.bind(dlx, routing_key=queue)
    return await channel.declare_queue(
        work_queue(namespace, queue),
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit + 1,  # the extra delivery gives up on a message that kills consumers
            "x-dead-letter-exchange": dlx,
            "x-dead-letter-routing-key": queue,
            # One consumer at a time across all processes, for handlers that must not run concurrently.
            **({"x-single-active-consumer": True} if single_active else {}),
        },
    )


async def delete_namespace(url: str, namespace: str, queues: Sequence[str] = DEFAULT_QUEUES) -> None:
    """Delete the exchanges of `namespace` and the work and dead-letter queues named in `queues`.

    Without the management API the broker cannot list a namespace's queues, so the names are derived; the live
    subscription queues need no cleanup, being exclusive and auto-delete."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        names = [n for q in queues for n in (work_queue(namespace, q), dead_letter_queue(namespace, q))]
        for name in names:
            channel = await _delete(connection, channel, name, channel.queue_delete)
        for name in (events_exchange(namespace), commands_exchange(namespace), dead_letter_exchange(namespace)):
            channel = await _delete(connection, channel, name, channel.exchange_delete)
    finally:
        await connection.close()
    log.info("bus.namespace_deleted", namespace=namespace, queues=list(queues))


async def _delete(
    connection: aio_pika.abc.AbstractConnection,
    channel: AbstractChannel,
    name: str,
    delete: Callable[[str], Awaitable[Any]],
) -> AbstractChannel:
    """Delete one queue or exchange; a broker that refuses (e.g. an old one answering 404 for a missing name)
    closes the channel, so hand back a usable one."""
    try:
        await delete(name)
    except aiormq.exceptions.AMQPError as exc:
        log.debug("bus.delete_skipped", name=name, error=repr(exc))
        if channel.is_closed:
            return await connection.channel()
    return channel
