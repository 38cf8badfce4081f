"""Connection details of the real RabbitMQ and PostgreSQL on this machine (and in CI), and fresh namespaces."""

from __future__ import annotations

import os
import uuid

import aio_pika

AMQP_URL = os.environ.get("ADAGENT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DATABASE_URL = os.environ.get("ADAGENT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fresh_namespace(prefix: str = "t") -> str:
    """A unique name so parallel or repeated runs never share queues, exchanges or schemas."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def dead_letters(namespace: str, queue: str) -> int:
    """How many messages wait in the dead-letter queue of work queue `queue`, as the broker counts them."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(f"{namespace}.{queue}.dead", passive=True)
        return int(dead.declaration_result.message_count or 0)
