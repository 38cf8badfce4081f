"""The distributed mode as real processes, for tests: `adagent service NAME` per service, sharing one broker
namespace, one PostgreSQL schema and one object-storage folder; a user "ann" to log in as."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.store.postgres import drop_schema
from tests.brokers import AMQP_URL, DATABASE_URL

COMMAND = [sys.executable, "-m", "services.cli.main"]
WORKERS = ("prompter", "renderer", "merger", "voice")
USER, PASSWORD = "ann", "ann-password-123"


async def until(condition: Callable[[], Awaitable[bool]], within: float = 60.0, what: str = "condition") -> None:
    """Wait for `condition()` to come true, for at most `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        assert loop.time() < deadline, f"{what} not met in time"
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def distributed_env(tmp_path: Path, namespace: str, public_port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ADAGENT_HOME": str(tmp_path / "shared-home"),  # the object storage every process shares
        "ADAGENT_BUS": "rabbitmq",
        "ADAGENT_AMQP_URL": AMQP_URL,
        "ADAGENT_AMQP_NAMESPACE": namespace,
        "ADAGENT_STORE": "postgres",
        "ADAGENT_DATABASE_URL": DATABASE_URL,
        "ADAGENT_DATABASE_SCHEMA": namespace,
        "ADAGENT_PUBLIC_URL": f"http://127.0.0.1:{public_port}",
        "ADAGENT_SIGNING_KEY": "test-signing-key-shared-by-all-processes",
        "ADAGENT_JWT_SECRET": "test-jwt-secret-shared-by-all-gateways",
        **extra,
    }


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*COMMAND, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_services(env: dict[str, str], gateway_ports: list[int]) -> dict[str, subprocess.Popen[str]]:
    """Add the user, then start `gateway` (or `gateway.1`, `gateway.2`, …) and one process per worker."""
    subprocess.run(
        [*COMMAND, "users", "add", USER, "--password-stdin"],
        input=f"{PASSWORD}\n", env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    if len(gateway_ports) == 1:
        gateways = [("gateway", gateway_ports[0])]
    else:
        gateways = [(f"gateway.{i}", p) for i, p in enumerate(gateway_ports, start=1)]
    processes = {label: spawn(env, "service", "gateway", "--port", str(port)) for label, port in gateways}
    processes.update({name: spawn(env, "service", name) for name in WORKERS})
    return processes


def stop(processes: dict[str, subprocess.Popen[str]]) -> dict[str, str]:
    """SIGTERM every service still running; each must stop by itself. Returns each one's stderr."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    return {name: process.communicate(timeout=30)[1] for name, process in processes.items()}


async def stop_and_clean_up(processes: dict[str, subprocess.Popen[str]], namespace: str) -> dict[str, str]:
    """Stop every service (see `stop`), then drop the test's broker namespace and PostgreSQL schema, whatever
    happened. Returns each one's stderr."""
    try:
        return await asyncio.to_thread(stop, processes)
    finally:
        await delete_namespace(AMQP_URL, namespace)
        await drop_schema(DATABASE_URL, namespace)


async def healthy(url: str, processes: dict[str, subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url) as client:
        while True:
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, {n: p.poll() for n, p in processes.items()}
            await asyncio.sleep(0.2)


async def login(url: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/api/auth/login", json={"username": USER, "password": PASSWORD})
    return str(response.json()["access_token"])
