"""A renderer process on Veo is SIGKILLed while it polls a paid operation: the renderer that gets the clip next polls
the same operation (recorded as ClipGenerationSubmitted before the first poll), and Veo is asked once per clip.
Real processes, the real broker and PostgreSQL, the real google-genai SDK against the fake Vertex AI."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from contracts.events import ClipGenerationSubmitted, ClipRendered, JobCompleted
from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.store.postgres import PostgresEventStore, drop_schema
from tests.brokers import AMQP_URL, DATABASE_URL, fresh_namespace
from tests.e2e.processes import distributed_env, free_port, healthy, login, spawn, start_services, stop, until
from tests.fakes.veo import FakeVeo
from tests.gateway.jobs_client import client_for, read_events

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = "Meet Glow, the serum that works while you sleep. Order today and save twenty percent on your first bottle."


async def test_a_killed_veo_renderer_is_resumed_without_paying_twice(tmp_path: Path, avatar_data_uri: str) -> None:
    namespace = fresh_namespace("veokill")
    port = free_port()
    with FakeVeo() as veo:
        assert isinstance(veo, FakeVeo)
        veo.behaviour.polls_until_done = 10_000  # nothing finishes until the renderer has been killed
        env = distributed_env(
            tmp_path,
            namespace,
            port,
            ADAGENT_RENDERER="veo",
            ADAGENT_RENDER_CONCURRENCY="2",
            GOOGLE_APPLICATION_CREDENTIALS=str(
                veo.account.write_key_file(tmp_path / "sa.json", veo.tokens.token_uri(veo))
            ),
            GOOGLE_CLOUD_PROJECT=veo.account.project,
            GOOGLE_CLOUD_LOCATION="us-central1",
            GOOGLE_VERTEX_BASE_URL=veo.url,
            ADAGENT_VEO_POLL_SECONDS="0.1",
            ADAGENT_VEO_POLL_MAX_SECONDS="0.2",
            ADAGENT_VEO_REQUESTS_PER_MINUTE="6000",
        )
        processes = await asyncio.to_thread(start_services, env, [port])
        store = PostgresEventStore(DATABASE_URL, schema=namespace)
        try:
            url = f"http://127.0.0.1:{port}"
            await healthy(url, processes)
            await store.open()
            async with client_for(url, await login(url)) as client:
                body = {"script": SCRIPT, "character_image": avatar_data_uri}
                job_id = (await client.post("/api/ad-agent/create", json=body)).json()["job_id"]

                async def both_clips_polled() -> bool:
                    return len({r.json()["operationName"] for r in veo.poll_calls}) >= 2

                await until(both_clips_polled, what="the renderer polling both operations")
                processes["renderer"].send_signal(signal.SIGKILL)
                await asyncio.to_thread(processes["renderer"].wait, 10)
                submitted = [
                    r.event for r in await store.history(job_id) if isinstance(r.event, ClipGenerationSubmitted)
                ]
                assert len(submitted) == 2 and len(veo.generate_calls) == 2

                with veo.lock:  # Veo finishes the clips a little later
                    for operation in veo.operations.values():
                        operation.polls_left = 2
                processes["renderer.2"] = await asyncio.to_thread(spawn, env, "service", "renderer")
                events = await read_events(client, f"/api/ad-agent/jobs/{job_id}/events")
                assert events[-1].event == "complete", events[-1].data

            history = [r.event for r in await store.history(job_id)]
            assert len(veo.generate_calls) == 2  # the fake counts: no clip was paid for twice
            assert [e for e in history if isinstance(e, ClipGenerationSubmitted)] == submitted
            clips = [e for e in history if isinstance(e, ClipRendered)]
            assert sorted(c.index for c in clips) == [1, 2]
            assert any(isinstance(e, JobCompleted) for e in history)
        finally:
            await store.close()
            await asyncio.to_thread(stop, processes)
            await delete_namespace(AMQP_URL, namespace)
            await drop_schema(DATABASE_URL, namespace)
