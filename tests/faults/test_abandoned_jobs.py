"""A running job that no live worker holds any more is failed by the scheduler's sweep, and its user's slot frees; a
job whose worker keeps renewing its hold, or that waits its turn behind busy workers, is left alone, however long.
Short leases (ADAGENT_WORKER_LEASE_SECONDS) keep the tests short."""

from __future__ import annotations

import asyncio
import signal
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.commands import RenderClip
from contracts.events import ClipRenderingStarted, Event, JobFailed
from services.renderer.local import LocalClipRenderer
from services.renderer.port import RenderedClip
from services.runtime.context import Runtime
from services.runtime.store.pg_pool import quote_ident
from tests.brokers import DATABASE_URL
from tests.conftest import start_server
from tests.e2e.distributed_job import DistributedJob, distributed_job
from tests.e2e.processes import free_port, healthy, spawn, stop, until
from tests.gateway.jobs_client import client_for, read_events

LINE = "Wake up radiant, every single morning."  # one clip each
OTHER = "Glow keeps working while you sleep."
ABANDONED = "The server stopped working on this job: "
LEASE = 1.0


class HangingRenderer:
    """Never finishes a clip of LINE: a worker that holds its job (and renews its hold) for as long as it lives."""

    def __init__(self) -> None:
        self.inner = LocalClipRenderer()
        self.started = asyncio.Event()

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        if command.clip.line == LINE:
            self.started.set()
            await asyncio.sleep(3600)
        return await self.inner.render(command, avatar, out)


async def test_a_job_left_behind_by_a_stopped_server_is_failed_and_the_next_one_runs(
    tmp_path: Path, avatar_data_uri: str
) -> None:
    home = tmp_path / "home"
    hanging = HangingRenderer()
    limits = {"max_running_per_user": 1, "worker_lease_seconds": LEASE}
    async for server in start_server(home, {"renderer": hanging}, **limits):
        async with client_for(server.url, server.token) as client:
            first = (await client.post("/api/ad-agent/create", json=_body(avatar_data_uri, LINE))).json()["job_id"]
            await asyncio.wait_for(hanging.started.wait(), 60)
            second = (await client.post("/api/ad-agent/create", json=_body(avatar_data_uri, OTHER))).json()["job_id"]
            # Held by a live worker that renews its hold: left alone for several leases.
            await asyncio.sleep(4 * LEASE)
            assert (await client.get(f"/api/ad-agent/jobs/{first}")).json()["status"] == "running"
            assert (await client.get(f"/api/ad-agent/jobs/{second}")).json()["status"] == "queued"
    # The embedded server stops mid-clip; its in-process queues go with it. Started again, nothing holds the job.
    async for server in start_server(home, **limits):
        async with client_for(server.url, server.token) as client:
            events = await asyncio.wait_for(read_events(client, f"/api/ad-agent/jobs/{first}/events"), 30)
            assert events[-1].event == "error", [(e.event, e.data) for e in events]
            error = events[-1].json()
            assert error["message"].startswith(ABANDONED) and error["step"] == 2, error
            # Its slot is free: the same user's queued job starts and completes.
            done = await asyncio.wait_for(read_events(client, f"/api/ad-agent/jobs/{second}/events"), 120)
            assert done[-1].event == "complete", [(e.event, e.data) for e in done]
        history = await server.stack.runtime.history(first)
        assert len(history.all(JobFailed)) == 1


class SlowFirstClip:
    """Takes 4 leases over the clip of LINE, then renders it: with one clip at a time, the other job's clip waits
    that long in the renderer's queue, recording nothing meanwhile."""

    def __init__(self) -> None:
        self.inner = LocalClipRenderer()

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        if command.clip.line == LINE:
            await asyncio.sleep(4 * LEASE)
        return await self.inner.render(command, avatar, out)


async def test_a_long_clip_and_a_job_waiting_its_turn_behind_it_are_left_alone(
    tmp_path: Path, avatar_data_uri: str
) -> None:
    settings = {"render_concurrency": 1, "worker_lease_seconds": LEASE}
    async for server in start_server(tmp_path / "home", {"renderer": SlowFirstClip()}, **settings):
        async with client_for(server.url, server.token) as client:
            slow = (await client.post("/api/ad-agent/create", json=_body(avatar_data_uri, LINE))).json()
            await until(partial(_has, server.stack.runtime, slow["job_id"], ClipRenderingStarted))
            waiting = (await client.post("/api/ad-agent/create", json=_body(avatar_data_uri, OTHER))).json()
            results = await asyncio.wait_for(
                asyncio.gather(read_events(client, slow["events_url"]), read_events(client, waiting["events_url"])),
                120,
            )
        for events in results:
            assert events[-1].event == "complete", [(e.event, e.data) for e in events]


SCRIPT = (
    "Our first line is long enough to fill most of one clip on its own. "
    "Then a second line arrives, just as long, so it needs a clip of its own. "
    "And the third line closes the ad with a warm and friendly goodbye."
)


@pytest.mark.rabbitmq
@pytest.mark.postgres
async def test_a_job_whose_renderer_was_killed_with_none_to_take_over_is_failed_by_one_gateway(
    tmp_path: Path, avatar_data_uri: str
) -> None:
    body = {"script": SCRIPT, "character_image": avatar_data_uri}
    extra = {"ADAGENT_RENDER_CONCURRENCY": "1", "ADAGENT_WORKER_LEASE_SECONDS": "2"}
    async with distributed_job(tmp_path, "abandon", body, **extra) as job:
        # A second gateway: both run a scheduler; one sweeps.
        port = free_port()
        job.processes["gateway.2"] = await asyncio.to_thread(spawn, job.env, "service", "gateway", "--port", str(port))
        await healthy(f"http://127.0.0.1:{port}", job.processes)
        await until(lambda: _rendering(job))
        job.processes["renderer"].send_signal(signal.SIGKILL)
        await asyncio.to_thread(job.processes["renderer"].wait, 10)

        events = await asyncio.wait_for(read_events(job.client, f"/api/ad-agent/jobs/{job.job_id}/events"), 60)
        assert events[-1].event == "error", [(e.event, e.data) for e in events]
        assert events[-1].json()["message"].startswith(ABANDONED)
        holders = await _sweeper_holders(job.env["ADAGENT_DATABASE_SCHEMA"])
        gateways = {name: job.processes.pop(name) for name in list(job.processes) if name.startswith("gateway")}
        logs = await asyncio.to_thread(stop, gateways)
    assert len(holders) == 1
    sweeping = [name for name, err in logs.items() if "scheduler.job_abandoned" in err]
    assert len(sweeping) == 1, {name: err[-2000:] for name, err in logs.items()}


async def _has(rt: Runtime, job_id: str, kind: type[Event]) -> bool:
    return (await rt.history(job_id)).has(kind)


async def _rendering(job: DistributedJob) -> bool:
    return any(isinstance(r.event, ClipRenderingStarted) for r in await job.store.history(job.job_id))


async def _sweeper_holders(schema: str) -> list[str]:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetch(f"SELECT holder FROM {quote_ident(schema)}.leases WHERE name = 'sweeper'")
    finally:
        await conn.close()
    return [str(r["holder"]) for r in rows]


def _body(avatar: str, script: str) -> dict[str, Any]:
    return {"script": script, "character_image": avatar}
