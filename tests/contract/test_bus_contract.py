"""One contract, two transports: the in-process bus and RabbitMQ (the real broker on 127.0.0.1:5672)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from contracts.commands import RenderClip
from contracts.events import ClipPlan, ClipRendered, JobRequested, RecordedEvent
from services.runtime.bus.memory import InMemoryBroker, InMemoryBus
from services.runtime.bus.port import Bus
from tests.brokers import AMQP_URL, fresh_namespace


def _bus(kind: str, namespace: str, broker: InMemoryBroker) -> Bus:
    if kind == "memory":
        return InMemoryBus(broker, retry_delay=0.01)
    from services.runtime.bus.rabbitmq import RabbitMqBus

    return RabbitMqBus(AMQP_URL, namespace=namespace, retry_delay=0.01)


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    namespace = fresh_namespace("bus")
    made: list[Bus] = []
    broker = InMemoryBroker()  # what the buses of one test share, as processes share one RabbitMQ

    async def make() -> Bus:
        bus = _bus(request.param, namespace, broker)
        await bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()
    if request.param == "rabbitmq":
        from services.runtime.bus.rabbitmq import delete_namespace

        await delete_namespace(AMQP_URL, namespace)


def _recorded(seq: int, job: str = "ad_1", index: int = 1) -> RecordedEvent:
    ev = ClipRendered(
        event_id=f"{job}/clip/{index}/{seq}", job_id=job, index=index, total_clips=3, clip_ref="file:///x", duration_s=1
    )
    return RecordedEvent(seq=seq, recorded_at=time.time(), event=ev)


def _command(i: int) -> RenderClip:
    clip = ClipPlan(index=i, line="Hello there.", prompt="A person says hello.", est_seconds=1.0)
    return RenderClip(
        command_id=f"ad_1/render/{i}",
        job_id="ad_1",
        clip=clip,
        total_clips=9,
        avatar_ref="file:///a.png",
        character_name="Heather",
        voice_id=None,
        aspect_ratio="16:9",
        resolution="720p",
    )


async def _until(predicate: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_event_reaches_work_queue_bound_to_its_type(make_bus) -> None:  # type: ignore[no-untyped-def]
    bus = await make_bus()
    got: list[RecordedEvent] = []

    async def handler(r: RecordedEvent) -> None:
        got.append(r)

    await bus.consume_events("merger", ["ClipRendered"], handler, concurrency=1)
    other = JobRequested(
        event_id="ad_1/req",
        job_id="ad_1",
        script="x",
        avatar_ref="file:///a",
        character_name="c",
        voice_id=None,
        aspect_ratio="16:9",
        resolution="720p",
    )
    await bus.publish_event(RecordedEvent(seq=1, recorded_at=0.0, event=other))
    await bus.publish_event(_recorded(2))
    await _until(lambda: len(got) == 1)
    await asyncio.sleep(0.2)
    assert [r.seq for r in got] == [2]
    assert got[0] == _recorded(2).__class__(seq=2, recorded_at=got[0].recorded_at, event=_recorded(2).event)


async def test_commands_round_trip_with_their_fields(make_bus) -> None:  # type: ignore[no-untyped-def]
    bus = await make_bus()
    got: list[RenderClip] = []

    async def handler(c: RenderClip) -> None:
        got.append(c)

    await bus.consume_commands("renderer", ["RenderClip"], handler, concurrency=2)
    for i in range(1, 4):
        await bus.send_command(_command(i))
    await _until(lambda: len(got) == 3)
    assert sorted(c.clip.index for c in got) == [1, 2, 3]
    assert got[0].clip.line == "Hello there."


async def test_a_command_sent_before_its_consumer_starts_is_not_lost(make_bus) -> None:  # type: ignore[no-untyped-def]
    """Services start in any order: a prompter may send RenderClip before any renderer has declared its queue."""
    producer, worker = await make_bus(), await make_bus()
    got: list[RenderClip] = []

    async def handler(c: RenderClip) -> None:
        got.append(c)

    sending = asyncio.create_task(producer.send_command(_command(1)))
    await asyncio.sleep(1.0)  # the renderer is still starting
    await worker.consume_commands("renderer", ["RenderClip"], handler, concurrency=1)
    await asyncio.wait_for(sending, 30)
    await _until(lambda: len(got) == 1)
    await asyncio.sleep(0.3)
    assert [c.command_id for c in got] == ["ad_1/render/1"]


async def test_competing_consumers_share_work_each_message_once(make_bus) -> None:  # type: ignore[no-untyped-def]
    worker_a, worker_b, producer = await make_bus(), await make_bus(), await make_bus()
    seen: list[tuple[str, int]] = []

    def handler_for(name: str):  # type: ignore[no-untyped-def]
        async def handler(c: RenderClip) -> None:
            await asyncio.sleep(0.02)
            seen.append((name, c.clip.index))

        return handler

    await worker_a.consume_commands("renderer", ["RenderClip"], handler_for("a"), concurrency=1)
    await worker_b.consume_commands("renderer", ["RenderClip"], handler_for("b"), concurrency=1)
    for i in range(1, 21):
        await producer.send_command(_command(i))
    await _until(lambda: len(seen) == 20)
    await asyncio.sleep(0.2)
    assert sorted(i for _, i in seen) == list(range(1, 21))
    assert {n for n, _ in seen} == {"a", "b"}


async def test_concurrency_limit_is_respected(make_bus) -> None:  # type: ignore[no-untyped-def]
    bus = await make_bus()
    running = 0
    peak = 0
    done = 0

    async def handler(c: RenderClip) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        done += 1

    await bus.consume_commands("renderer", ["RenderClip"], handler, concurrency=3)
    for i in range(1, 13):
        await bus.send_command(_command(i))
    await _until(lambda: done == 12)
    assert peak == 3


async def test_a_consumer_sized_by_a_quota_runs_that_many_at_once(make_bus) -> None:  # type: ignore[no-untyped-def]
    """A renderer waiting on a remote provider takes as many clips as the quota allows (e.g. 120 a minute): the
    transport holds no lower limit of its own (prefetch, workers)."""
    bus = await make_bus()
    started = 0
    everyone = asyncio.Event()

    async def handler(c: RenderClip) -> None:
        nonlocal started
        started += 1
        if started == 120:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), 10)  # each returns only once all 120 are running together

    await bus.consume_commands("renderer", ["RenderClip"], handler, concurrency=120)
    for i in range(1, 121):
        await bus.send_command(_command(i))
    await _until(everyone.is_set)
    assert started == 120


async def test_failed_handler_gets_message_again(make_bus) -> None:  # type: ignore[no-untyped-def]
    bus = await make_bus()
    attempts: list[int] = []

    async def handler(c: RenderClip) -> None:
        attempts.append(c.clip.index)
        if len(attempts) < 3:
            raise RuntimeError("transient")

    await bus.consume_commands("renderer", ["RenderClip"], handler, concurrency=1)
    await bus.send_command(_command(7))
    await _until(lambda: len(attempts) == 3)
    await asyncio.sleep(0.2)
    assert attempts == [7, 7, 7]


async def test_message_is_not_acknowledged_before_handler_finishes(make_bus) -> None:  # type: ignore[no-untyped-def]
    """A consumer that dies mid-handler (its bus closed) leaves the message for the next consumer."""
    first = await make_bus()
    started = asyncio.Event()

    async def stuck(c: RenderClip) -> None:
        started.set()
        await asyncio.sleep(3600)

    await first.consume_commands("renderer", ["RenderClip"], stuck, concurrency=1)
    await first.send_command(_command(5))
    await asyncio.wait_for(started.wait(), 10)
    await first.close()
    second = await make_bus()
    got: list[int] = []

    async def handler(c: RenderClip) -> None:
        got.append(c.clip.index)

    await second.consume_commands("renderer", ["RenderClip"], handler, concurrency=1)
    await _until(lambda: got == [5])


async def test_every_subscriber_sees_every_event(make_bus) -> None:  # type: ignore[no-untyped-def]
    publisher, gateway_a, gateway_b = await make_bus(), await make_bus(), await make_bus()
    seen_a: list[int] = []
    seen_b: list[int] = []

    async def on_a(r: RecordedEvent) -> None:
        seen_a.append(r.seq)

    async def on_b(r: RecordedEvent) -> None:
        seen_b.append(r.seq)

    await gateway_a.subscribe_events(on_a)
    unsubscribe_b = await gateway_b.subscribe_events(on_b)
    for seq in range(1, 6):
        await publisher.publish_event(_recorded(seq))
    await _until(lambda: len(seen_a) == 5 and len(seen_b) == 5)
    assert seen_a == [1, 2, 3, 4, 5]
    assert seen_b == [1, 2, 3, 4, 5]
    await unsubscribe_b()
    await publisher.publish_event(_recorded(6))
    await _until(lambda: len(seen_a) == 6)
    await asyncio.sleep(0.2)
    assert seen_b == [1, 2, 3, 4, 5]
