"""Two gateway processes serve the same jobs: a client follows a job on one, loses it mid-stream, resumes on the other
with Last-Event-ID, and gets every remaining event exactly once, in order."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.store.postgres import drop_schema
from tests.brokers import AMQP_URL, DATABASE_URL, fresh_namespace
from tests.e2e.test_one_process_per_service import _free_port, _stop
from tests.gateway.jobs_client import client_for, read_events

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = (
    "Our first line is long enough to fill most of one clip on its own. "
    "Then a second line arrives, just as long, so it needs a clip of its own. "
    "And the third line closes the ad with a warm and friendly goodbye."
)


def _start(env: dict[str, str], ports: list[int]) -> dict[str, subprocess.Popen[str]]:
    command = [sys.executable, "-m", "services.cli.main"]
    subprocess.run(
        [*command, "users", "add", "ann", "--password-stdin"],
        input="ann-password-123\n", env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    services = [(f"gateway.{i}", ["gateway", "--port", str(p)]) for i, p in enumerate(ports, start=1)]
    services += [(name, [name]) for name in ("prompter", "renderer", "merger", "voice")]
    return {
        label: subprocess.Popen(
            [*command, "service", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for label, args in services
    }


async def _healthy(url: str, processes: dict[str, subprocess.Popen[str]]) -> None:
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


async def test_resume_on_another_gateway(avatar_data_uri: str, tmp_path: Path) -> None:
    namespace = fresh_namespace("gw2")
    ports = [_free_port(), _free_port()]
    env = {
        **os.environ,
        "ADAGENT_HOME": str(tmp_path / "shared-home"),
        "ADAGENT_BUS": "rabbitmq",
        "ADAGENT_AMQP_URL": AMQP_URL,
        "ADAGENT_AMQP_NAMESPACE": namespace,
        "ADAGENT_STORE": "postgres",
        "ADAGENT_DATABASE_URL": DATABASE_URL,
        "ADAGENT_DATABASE_SCHEMA": namespace,
        "ADAGENT_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
        "ADAGENT_SIGNING_KEY": "test-signing-key-shared-by-all-processes",
        "ADAGENT_JWT_SECRET": "test-jwt-secret-shared-by-all-gateways",
    }
    processes = await asyncio.to_thread(_start, env, ports)
    try:
        first, second = (f"http://127.0.0.1:{p}" for p in ports)
        await _healthy(first, processes)
        await _healthy(second, processes)
        async with httpx.AsyncClient(base_url=first) as anonymous:
            login = await anonymous.post("/api/auth/login", json={"username": "ann", "password": "ann-password-123"})
        token = login.json()["access_token"]  # a token from one gateway is good on the other (shared secret)
        async with client_for(first, token) as on_first, client_for(second, token) as on_second:
            created = (
                await on_first.post("/api/ad-agent/create", json={"script": SCRIPT, "character_image": avatar_data_uri})
            ).json()
            path = f"/api/ad-agent/jobs/{created['job_id']}/events"
            before = await read_events(on_first, path, stop_after=3)
            after = await read_events(on_second, path, headers={"Last-Event-ID": before[-1].id or ""})
            whole = await read_events(on_second, path)
        got = [(m.id, m.event, m.data) for m in before + after]
        assert got == [(m.id, m.event, m.data) for m in whole]
        assert got[-1][1] == "complete"
    finally:
        errors = await asyncio.to_thread(_stop, processes)
        await delete_namespace(AMQP_URL, namespace)
        await drop_schema(DATABASE_URL, namespace)
    for name, process in processes.items():
        assert process.returncode == 0, (name, errors[name][-2000:])
