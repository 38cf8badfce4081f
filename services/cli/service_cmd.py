"""`adagent service NAME`: one service of the distributed mode in this process, against RabbitMQ, the PostgreSQL
event store and the shared object storage; every setting from the environment, checked at start."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from services.cli.server import bind, public_url, running_server
from services.cli.signals import stop_on_signals
from services.runtime.context import open_runtime
from services.runtime.settings import Settings, SettingsError, load_settings
from services.stack import WORKERS, start_worker

SERVICES = ("gateway", *WORKERS)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("service", help="run one service of the distributed mode (RabbitMQ + PostgreSQL)")
    p.add_argument("name", choices=SERVICES)
    p.add_argument("--host", default="127.0.0.1", help="gateway only")
    p.add_argument("--port", type=int, default=8001, help="gateway only")


def check_distributed(settings: Settings) -> None:
    """One service alone cannot reach the others through an in-process bus: say what to set."""
    if settings.bus != "rabbitmq":
        raise SettingsError(
            "ADAGENT_BUS must be rabbitmq for `adagent service` (the services of separate processes meet on the "
            "broker); set ADAGENT_AMQP_URL too"
        )


async def _wait_for_stop(name: str, settings: Settings, stop: asyncio.Event) -> None:
    """Until SIGINT or SIGTERM. The handlers stay installed while the service drains, so a second signal does not
    kill it with a traceback half-way through: the grace period (ADAGENT_SHUTDOWN_GRACE_SECONDS) bounds the wait."""
    await stop.wait()
    print(
        f"adagent {name} stopping: no new messages; in-flight work has up to {settings.shutdown_grace_seconds:g}s "
        "to finish, the rest returns to the queue",
        file=sys.stderr,
        flush=True,
    )


async def run_service(name: str, host: str, port: int) -> int:
    stop = stop_on_signals()  # first: `adagent dev` may stop us while we start, and that must still be a clean stop
    settings = load_settings()
    check_distributed(settings)
    if name == "gateway":
        if not os.environ.get("ADAGENT_PUBLIC_URL"):
            settings = load_settings(public_url=public_url(host, port))
        async with running_server(settings, bind(host, port), workers=()):
            print(f"adagent gateway serving on {public_url(host, port)}", file=sys.stderr, flush=True)
            await _wait_for_stop(name, settings, stop)
        print(f"adagent {name} stopped", file=sys.stderr, flush=True)
        return 0
    rt = await open_runtime(settings)
    try:
        await start_worker(rt, name)
        print(f"adagent {name} consuming from {settings.amqp_namespace}.{name}", file=sys.stderr, flush=True)
        await _wait_for_stop(name, settings, stop)
    finally:
        # Stops consuming, lets in-flight handlers finish within the grace period, cancels the rest: their messages
        # were never acknowledged, so the broker returns them to the queue for another process.
        await rt.close()
    print(f"adagent {name} stopped", file=sys.stderr, flush=True)
    return 0
