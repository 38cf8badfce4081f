"""Processes die: a renderer SIGKILLed in the middle of a clip, a gateway SIGKILLed under an SSE client, and every
broker connection cut. Real processes, the real broker and PostgreSQL; each test bounded in time."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.events import ClipRendered, ClipRenderingStarted, JobCompleted
from services.runtime.media_probe import probe
from tests.brokers import fresh_namespace
from tests.e2e.distributed_job import DistributedJob, distributed_job
from tests.e2e.processes import (
    distributed_env,
    free_port,
    healthy,
    login,
    spawn,
    start_services,
    stop_and_clean_up,
    until,
)
from tests.gateway.jobs_client import client_for, read_events

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = (
    "Our first line is long enough to fill most of one clip on its own. "
    "Then a second line arrives, just as long, so it needs a clip of its own. "
    "And the third line closes the ad with a warm and friendly goodbye."
)


async def test_a_renderer_killed_mid_clip_loses_no_clip_and_doubles_none(tmp_path: Path, avatar_data_uri: str) -> None:
    body = {"script": SCRIPT, "character_image": avatar_data_uri}
    async with distributed_job(tmp_path, "kill", body, ADAGENT_RENDER_CONCURRENCY="1") as job:
        await until(lambda: _rendering(job))
        await asyncio.sleep(0.5)  # the renderer is inside its first clip (loading the voice, speaking, encoding)
        job.processes["renderer"].send_signal(signal.SIGKILL)
        await asyncio.to_thread(job.processes["renderer"].wait, 10)
        done_at_kill = [r for r in await job.store.history(job.job_id) if isinstance(r.event, ClipRendered)]
        assert len(done_at_kill) < 3
        job.processes["renderer.2"] = await asyncio.to_thread(spawn, job.env, "service", "renderer")
        events = await read_events(job.client, f"/api/ad-agent/jobs/{job.job_id}/events")
        assert events[-1].event == "complete", events[-1].data
        history = await job.store.history(job.job_id)
        clips = [r.event for r in history if isinstance(r.event, ClipRendered)]
        assert sorted(c.index for c in clips) == [1, 2, 3]  # every clip exactly once
        final = next(r.event for r in history if isinstance(r.event, JobCompleted))
        assert final.duration_s == pytest.approx(sum(c.duration_s for c in clips), abs=0.05)


async def _rendering(job: DistributedJob) -> bool:
    return any(isinstance(r.event, ClipRenderingStarted) for r in await job.store.history(job.job_id))


async def test_a_killed_gateway_hands_its_client_to_another(tmp_path: Path, avatar_data_uri: str) -> None:
    namespace = fresh_namespace("gwkill")
    ports = [free_port(), free_port()]
    env = distributed_env(tmp_path, namespace, ports[1], ADAGENT_RENDER_CONCURRENCY="1")
    processes = await asyncio.to_thread(start_services, env, ports)
    try:
        first, second = (f"http://127.0.0.1:{p}" for p in ports)
        await healthy(first, processes)
        await healthy(second, processes)
        token = await login(second)
        async with client_for(first, token) as on_first, client_for(second, token) as on_second:
            created = (
                await on_second.post(
                    "/api/ad-agent/create", json={"script": SCRIPT, "character_image": avatar_data_uri}
                )
            ).json()
            path = f"/api/ad-agent/jobs/{created['job_id']}/events"
            got: list[Any] = []
            with pytest.raises(httpx.HTTPError):
                async with on_first.stream("GET", path) as response:
                    from services.cli.sse_client import iter_sse

                    async for message in iter_sse(response):
                        if message.data:
                            got.append(message)
                            if len(got) == 3:
                                processes["gateway.1"].send_signal(signal.SIGKILL)
            rest = await read_events(on_second, path, headers={"Last-Event-ID": got[-1].id or ""})
            whole = await read_events(on_second, path)
        assert [(m.id, m.event) for m in got + rest] == [(m.id, m.event) for m in whole]
        assert whole[-1].event == "complete"
    finally:
        await stop_and_clean_up(processes, namespace)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl beside the broker")
async def test_every_broker_connection_cut_mid_job(tmp_path: Path, avatar_data_uri: str) -> None:
    body = {"script": SCRIPT, "character_image": avatar_data_uri}
    async with distributed_job(tmp_path, "cut", body, ADAGENT_RENDER_CONCURRENCY="1") as job:
        await until(lambda: _rendering(job))
        await asyncio.to_thread(
            subprocess.run, ["rabbitmqctl", "-q", "close_all_connections", "fault test"], timeout=60, check=True
        )

        async def completed() -> bool:
            return any(isinstance(r.event, JobCompleted) for r in await job.store.history(job.job_id))

        await until(completed, within=120)
        history = await job.store.history(job.job_id)
        assert sorted(r.event.index for r in history if isinstance(r.event, ClipRendered)) == [1, 2, 3]
        final = next(r.event for r in history if isinstance(r.event, JobCompleted))
        video = await asyncio.to_thread(probe, Path(final.final_ref.removeprefix("file://")))
        assert video.video_codec == "h264" and video.audio_codec == "aac"
