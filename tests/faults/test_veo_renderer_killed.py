"""A renderer process on Veo is SIGKILLed while it polls a paid operation: the renderer that gets the clip next polls
the same operation (recorded as ClipGenerationSubmitted before the first poll), and Veo is asked once per clip.
Real processes, the real broker and PostgreSQL, the real google-genai SDK against the fake Vertex AI."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from contracts.events import ClipGenerationSubmitted, ClipRendered, JobCompleted
from tests.e2e.distributed_job import distributed_job
from tests.e2e.processes import spawn, until
from tests.fakes.veo import FakeVeo
from tests.gateway.jobs_client import read_events

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = "Meet Glow, the serum that works while you sleep. Order today and save twenty percent on your first bottle."


async def test_a_killed_veo_renderer_is_resumed_without_paying_twice(tmp_path: Path, avatar_data_uri: str) -> None:
    with FakeVeo() as veo:
        assert isinstance(veo, FakeVeo)
        veo.behaviour.polls_until_done = 10_000  # nothing finishes until the renderer has been killed
        env = dict(
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
        body = {"script": SCRIPT, "character_image": avatar_data_uri}
        async with distributed_job(tmp_path, "veokill", body, **env) as job:

            async def both_clips_polled() -> bool:
                return len({r.json()["operationName"] for r in veo.poll_calls}) >= 2

            await until(both_clips_polled, what="the renderer polling both operations")
            job.processes["renderer"].send_signal(signal.SIGKILL)
            await asyncio.to_thread(job.processes["renderer"].wait, 10)
            submitted = [
                r.event for r in await job.store.history(job.job_id) if isinstance(r.event, ClipGenerationSubmitted)
            ]
            assert len(submitted) == 2 and len(veo.generate_calls) == 2

            with veo.lock:  # Veo finishes the clips a little later
                for operation in veo.operations.values():
                    operation.polls_left = 2
            job.processes["renderer.2"] = await asyncio.to_thread(spawn, job.env, "service", "renderer")
            events = await read_events(job.client, f"/api/ad-agent/jobs/{job.job_id}/events")
            assert events[-1].event == "complete", events[-1].data

            history = [r.event for r in await job.store.history(job.job_id)]
            assert len(veo.generate_calls) == 2  # the fake counts: no clip was paid for twice
            assert [e for e in history if isinstance(e, ClipGenerationSubmitted)] == submitted
            clips = [e for e in history if isinstance(e, ClipRendered)]
            assert sorted(c.index for c in clips) == [1, 2]
            assert any(isinstance(e, JobCompleted) for e in history)
