"""The distributed mode as an operator runs it: `adagent service NAME` once per service, each its own process,
meeting on the real RabbitMQ and PostgreSQL; a client streams a job through the gateway process; SIGTERM stops all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.brokers import fresh_namespace
from tests.e2e.flow import check_seed_stream, check_video, download, post_stream
from tests.e2e.processes import distributed_env, free_port, healthy, login, start_services, stop_and_clean_up

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = "Meet Glow, the serum that works while you sleep. Wake up radiant, every single morning."


async def test_each_service_in_its_own_process(avatar_data_uri: str, tmp_path: Path) -> None:
    namespace = fresh_namespace("proc")
    port = free_port()
    env = distributed_env(tmp_path, namespace, port)
    processes = await asyncio.to_thread(start_services, env, [port])
    try:
        url = f"http://127.0.0.1:{port}"
        await healthy(url, processes)
        token = await login(url)
        body = {"script": SCRIPT, "character_image": avatar_data_uri}
        complete = check_seed_stream(await post_stream(url, body, token))
        video = await download(complete["final_video_url"], tmp_path / "ad.mp4")
        check_video(video, SCRIPT, (1280, 720))
    finally:
        errors = await stop_and_clean_up(processes, namespace)
    for name, process in processes.items():
        assert process.returncode == 0, (name, errors[name][-2000:])
        assert "Traceback" not in errors[name], (name, errors[name][-2000:])
