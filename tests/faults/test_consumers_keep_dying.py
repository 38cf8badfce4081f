"""A message whose consumer dies holding it, delivery after delivery (a renderer killed by the OOM killer on one
avatar, say), never reaches a handler's give-up: the delivery after the limit is spent on giving up instead of
running it again, so its job ends with an `error` instead of hanging, and the message waits in the dead-letter
queue like any other poison message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from contracts.commands import RenderClip
from contracts.events import ClipPlan
from services.runtime.bus.rabbitmq import RabbitMqBus, delete_namespace
from tests.brokers import AMQP_URL, dead_letters, fresh_namespace

pytestmark = pytest.mark.rabbitmq

LIMIT = 2


def command() -> RenderClip:
    return RenderClip(
        command_id="ad_1/render/1",
        job_id="ad_1",
        clip=ClipPlan(index=1, line="A line that kills whoever renders it.", prompt="", est_seconds=3.0),
        total_clips=1,
        avatar_ref="file:///nowhere.png",
        character_name="Ava",
        voice_id=None,
        aspect_ratio="16:9",
        resolution="720p",
    )


async def test_a_message_whose_consumers_keep_dying_ends_with_give_up() -> None:
    namespace = fresh_namespace("dying")
    given_up: list[tuple[str, Any, str, int]] = []
    deliveries = 0
    holding = asyncio.Event()

    async def give_up(queue: str, message: Any, error: BaseException, attempts: int) -> None:
        given_up.append((queue, message, str(error), attempts))

    async def dies_holding_it(_: RenderClip) -> None:
        nonlocal deliveries
        deliveries += 1
        holding.set()
        await asyncio.Event().wait()  # until its process "dies" (the bus is closed without acknowledging)

    publisher = RabbitMqBus(AMQP_URL, namespace=namespace, delivery_limit=LIMIT)
    await publisher.start()
    try:
        for life in range(LIMIT + 3):
            consumer = RabbitMqBus(AMQP_URL, namespace=namespace, delivery_limit=LIMIT)
            consumer.set_give_up(give_up)
            await consumer.start()
            holding.clear()
            await consumer.consume_commands("renderer", ["RenderClip"], dies_holding_it, concurrency=1)
            if life == 0:
                await publisher.send_command(command())
            for _ in range(200):
                if holding.is_set() or given_up:
                    break
                await asyncio.sleep(0.05)
            await consumer.close()  # cancels the handler: the message goes back unacknowledged, its count + 1
            if given_up:
                break
        assert deliveries == LIMIT  # the handler never runs a (LIMIT + 1)th time
        [(queue, message, reason, attempts)] = given_up
        assert queue == "renderer" and attempts == LIMIT
        assert isinstance(message, RenderClip) and message.job_id == "ad_1"
        assert "stopped before finishing" in reason
        assert await dead_letters(namespace, "renderer") == 1  # waiting for an operator, like any poison message
    finally:
        await publisher.close()
        await delete_namespace(AMQP_URL, namespace)
