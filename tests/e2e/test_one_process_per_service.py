"""The distributed mode as an operator runs it: `adagent service NAME` once per service, each its own process,
meeting on the real RabbitMQ and PostgreSQL; a client streams a job through the gateway process; SIGTERM stops all."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.store.postgres import drop_schema
from tests.brokers import AMQP_URL, DATABASE_URL, fresh_namespace
from tests.e2e.flow import check_seed_stream, check_video, download, post_stream

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = "Meet Glow, the serum that works while you sleep. Wake up radiant, every single morning."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_services(env: dict[str, str], port: int) -> dict[str, subprocess.Popen[str]]:
    command = [sys.executable, "-m", "services.cli.main"]
    subprocess.run(
        [*command, "users", "add", "ann", "--password-stdin"],
        input="ann-password-123\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {
        name: subprocess.Popen(
            [*command, "service", name, *(["--port", str(port)] if name == "gateway" else [])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("gateway", "prompter", "renderer", "merger", "voice")
    }


def _stop(processes: dict[str, subprocess.Popen[str]]) -> dict[str, str]:
    """SIGTERM every service; each must stop by itself, cleanly."""
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    return {name: process.communicate(timeout=30)[1] for name, process in processes.items()}


async def test_each_service_in_its_own_process(avatar_data_uri: str, tmp_path: Path) -> None:
    namespace = fresh_namespace("proc")
    port = _free_port()
    env = {
        **os.environ,
        "ADAGENT_HOME": str(tmp_path / "shared-home"),  # the object storage and key files every process shares
        "ADAGENT_BUS": "rabbitmq",
        "ADAGENT_AMQP_URL": AMQP_URL,
        "ADAGENT_AMQP_NAMESPACE": namespace,
        "ADAGENT_STORE": "postgres",
        "ADAGENT_DATABASE_URL": DATABASE_URL,
        "ADAGENT_DATABASE_SCHEMA": namespace,
        "ADAGENT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ADAGENT_SIGNING_KEY": "test-signing-key-shared-by-all-processes",
        "ADAGENT_JWT_SECRET": "test-jwt-secret-shared-by-all-gateways",
    }
    processes = _start_services(env, port)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=url) as client:
            while True:
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, {n: p.poll() for n, p in processes.items()}
                await asyncio.sleep(0.2)
            login = await client.post("/api/auth/login", json={"username": "ann", "password": "ann-password-123"})
            token = login.json()["access_token"]
        body = {"script": SCRIPT, "character_image": avatar_data_uri}
        complete = check_seed_stream(await post_stream(url, body, token))
        video = await download(complete["final_video_url"], tmp_path / "ad.mp4")
        check_video(video, SCRIPT, (1280, 720))
    finally:
        errors = await asyncio.to_thread(_stop, processes)
        await delete_namespace(AMQP_URL, namespace)
        await drop_schema(DATABASE_URL, namespace)
    for name, process in processes.items():
        assert process.returncode == 0, (name, errors[name][-2000:])
        assert "Traceback" not in errors[name], (name, errors[name][-2000:])
