"""Two gateway processes serve the same jobs: a client follows a job on one, loses it mid-stream, resumes on the other
with Last-Event-ID, and gets every remaining event exactly once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.brokers import fresh_namespace
from tests.e2e.processes import distributed_env, free_port, healthy, login, start_services, stop_and_clean_up
from tests.gateway.jobs_client import client_for, read_events

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = (
    "Our first line is long enough to fill most of one clip on its own. "
    "Then a second line arrives, just as long, so it needs a clip of its own. "
    "And the third line closes the ad with a warm and friendly goodbye."
)


async def test_resume_on_another_gateway(avatar_data_uri: str, tmp_path: Path) -> None:
    namespace = fresh_namespace("gw2")
    ports = [free_port(), free_port()]
    env = distributed_env(tmp_path, namespace, ports[0])
    processes = await asyncio.to_thread(start_services, env, ports)
    try:
        first, second = (f"http://127.0.0.1:{p}" for p in ports)
        await healthy(first, processes)
        await healthy(second, processes)
        token = await login(first)  # a token from one gateway is good on the other (shared secret)
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
        errors = await stop_and_clean_up(processes, namespace)
    for name, process in processes.items():
        assert process.returncode == 0, (name, errors[name][-2000:])
