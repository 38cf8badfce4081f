"""The broker's own view of what the RabbitMQ bus declares: durable exchanges, durable quorum work queues with a
delivery limit and a dead-letter exchange, and a dead-letter queue per work queue."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from services.runtime.bus.rabbitmq import RabbitMqBus, delete_namespace
from tests.brokers import AMQP_URL, fresh_namespace

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl beside the broker"),
]


def _ctl(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "--no-table-headers", *args], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


async def test_declared_topology_as_the_broker_reports_it() -> None:
    namespace = fresh_namespace("topo")
    bus = RabbitMqBus(AMQP_URL, namespace=namespace, delivery_limit=4)
    await bus.start()

    async def nothing(_: object) -> None:
        return None

    try:
        await bus.consume_commands("renderer", ["RenderClip"], nothing, concurrency=3)
        await bus.consume_events("merger", ["ClipRendered"], nothing, concurrency=1)
        queues = await asyncio.to_thread(_ctl, "list_queues", "name", "type", "durable", "arguments")
        exchanges = await asyncio.to_thread(_ctl, "list_exchanges", "name", "type", "durable")
    finally:
        await bus.close()
        await delete_namespace(AMQP_URL, namespace)

    by_name = {q[0]: q for q in queues if q[0].startswith(namespace)}
    for work in ("renderer", "merger"):
        _, kind, durable, arguments = by_name[f"{namespace}.{work}"]
        assert (kind, durable) == ("quorum", "true")
        # One delivery beyond the bus's own limit: the bus gives up (the job gets its error) on that extra one.
        assert '{"x-delivery-limit",5}' in arguments
        assert f"{namespace}.dlx" in arguments
        assert by_name[f"{namespace}.{work}.dead"][1:3] == ["quorum", "true"]
    ex = {e[0]: e[1:] for e in exchanges if e[0].startswith(namespace)}
    assert ex[f"{namespace}.commands"] == ["direct", "true"]
    assert ex[f"{namespace}.events"] == ["topic", "true"]
    assert ex[f"{namespace}.dlx"][1] == "true"
