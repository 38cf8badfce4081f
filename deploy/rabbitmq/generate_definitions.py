"""Write deploy/rabbitmq/definitions.json from the code itself, so the file cannot drift from what the services
declare at start-up.

    .venv/bin/python deploy/rabbitmq/generate_definitions.py            # namespace "adagent", vhost "/"
    .venv/bin/python deploy/rabbitmq/generate_definitions.py --check    # exit 1 if the committed file is stale

Nothing here repeats a queue argument: the exchanges and queues come from running the code's own declaration
helper (`_declare_work_queue`) against a recording channel, and the bindings from running every service's `start`
against a recording bus (the gateway's scheduler and webhook dispatcher included).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.gateway import scheduler  # noqa: E402
from services.gateway.webhooks import WebhookDispatcher  # noqa: E402
from services.runtime.bus.rabbitmq import (  # noqa: E402
    RabbitMqBus,
    _declare_work_queue,
    commands_exchange,
    events_exchange,
)
from services.runtime.settings import load_settings  # noqa: E402
from services.stack import WORKERS, start_worker  # noqa: E402

OUTPUT = Path(__file__).with_name("definitions.json")
DELIVERY_LIMIT: int = inspect.signature(RabbitMqBus.__init__).parameters["delivery_limit"].default


class _RecordedQueue:
    def __init__(self, channel: RecordingChannel, name: str) -> None:
        self._channel = channel
        self.name = name

    async def bind(self, exchange: str, routing_key: str) -> None:
        self._channel.bindings.append((exchange, self.name, routing_key))


class RecordingChannel:
    """Stands in for an aio-pika channel: records what the declaration helpers ask the broker for."""

    def __init__(self) -> None:
        self.exchanges: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.bindings: list[tuple[str, str, str]] = []

    async def declare_exchange(self, name: str, type: Any, durable: bool = False, **_: Any) -> str:
        self.exchanges[name] = {"type": getattr(type, "value", str(type)), "durable": durable}
        return name

    async def declare_queue(
        self, name: str, durable: bool = False, arguments: dict[str, Any] | None = None, **_: Any
    ) -> _RecordedQueue:
        self.queues[name] = {"durable": durable, "arguments": dict(arguments or {})}
        return _RecordedQueue(self, name)


class RecordingBus:
    """Stands in for the bus: records which queue each service consumes, from which exchange, with which keys."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.consumers: dict[str, dict[str, Any]] = {}

    async def consume_events(
        self, queue: str, event_types: Any, handler: Any, *, concurrency: int, single_active: bool = False
    ) -> None:
        self.consumers[queue] = {
            "exchange": events_exchange(self.namespace),
            "keys": list(event_types),
            "single_active": single_active,
        }

    async def consume_commands(self, queue: str, command_types: Any, handler: Any, *, concurrency: int) -> None:
        self.consumers[queue] = {
            "exchange": commands_exchange(self.namespace),
            "keys": list(command_types),
            "single_active": False,
        }


async def _no_jobs() -> list[Any]:
    return []


async def _no_secret(_: str) -> str | None:
    return None


async def record_consumers(namespace: str) -> dict[str, dict[str, Any]]:
    """Run every service's start-up against a recording bus; queue name -> exchange, routing keys, single active."""
    bus = RecordingBus(namespace)
    store = SimpleNamespace(running_jobs=_no_jobs, queued_jobs=_no_jobs)
    rt: Any = SimpleNamespace(bus=bus, settings=load_settings({}), store=store, steps={}, closers=[])
    try:
        await scheduler.start(rt)
        dispatcher = WebhookDispatcher(rt, _no_secret)
        try:
            await dispatcher.start()
        finally:
            await dispatcher.close()
        for name in WORKERS:
            await start_worker(rt, name)
    finally:
        for close in reversed(rt.closers):  # the scheduler's sweeper, a worker's provider: nothing keeps running
            await close()
    return bus.consumers


async def build(namespace: str = "adagent", vhost: str = "/") -> dict[str, Any]:
    consumers = await record_consumers(namespace)
    channel = RecordingChannel()
    for queue, consumer in consumers.items():
        declared = await _declare_work_queue(channel, namespace, queue, DELIVERY_LIMIT, consumer["single_active"])
        for key in consumer["keys"]:
            await declared.bind(consumer["exchange"], routing_key=key)
    return {
        "rabbitmq_version": "3.10.0",
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": spec["type"],
                "durable": spec["durable"],
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name, spec in sorted(channel.exchanges.items())
        ],
        "queues": [
            {
                "name": name,
                "vhost": vhost,
                "durable": spec["durable"],
                "auto_delete": False,
                "arguments": spec["arguments"],
            }
            for name, spec in sorted(channel.queues.items())
        ],
        "bindings": [
            {
                "source": source,
                "vhost": vhost,
                "destination": destination,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": {},
            }
            for source, destination, key in sorted(set(channel.bindings))
        ],
    }


def render(definitions: dict[str, Any]) -> str:
    return json.dumps(definitions, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if definitions.json differs from the code")
    args = parser.parse_args()
    text = render(asyncio.run(build()))
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
