"""A merger that claimed a job's merge and died leaves a claim with no ClipsMerged: after the claim's lease another
merger takes over and the job completes, with one `step3` on the stream and one merge per live claim."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from contracts.events import ClipRendered, ClipsMerged, JobCompleted, MergeStarted, RecordedEvent, event_id
from services.merger.handler import handle_clip_rendered
from tests.conftest import Server, start_server
from tests.gateway.jobs_client import body, client_for, read_events

SCRIPT = "Meet Glow, the serum that works while you sleep. Order today and save twenty percent."


async def _job_with_all_clips(
    server: Server, client: httpx.AsyncClient, avatar: str
) -> tuple[str, list[ClipRendered], RecordedEvent]:
    """A job created over HTTP whose clips have all rendered, with no merger running: its id, its clips, and one
    recorded ClipRendered for the test to deliver to mergers."""
    rt = server.stack.runtime
    job_id = (await client.post("/api/ad-agent/create", json=body(avatar, script=SCRIPT))).json()["job_id"]
    for _ in range(600):
        recorded = await rt.store.history(job_id)
        clips = [r.event for r in recorded if isinstance(r.event, ClipRendered)]
        if clips and len(clips) == clips[0].total_clips:
            return job_id, clips, next(r for r in recorded if isinstance(r.event, ClipRendered))
        await asyncio.sleep(0.05)
    raise AssertionError("the clips never all rendered")


async def test_an_abandoned_merge_is_taken_over_after_its_lease(tmp_path: Path, avatar_data_uri: str) -> None:
    # No merger in this stack: the test plays the mergers, the dead one and the two that find its claim.
    async for server in start_server(
        tmp_path / "home", {"workers": ("prompter", "renderer", "voice")}, merge_lease_seconds=1.0
    ):
        rt = server.stack.runtime
        async with client_for(server.url, server.token) as client:
            job_id, clips, rendered = await _job_with_all_clips(server, client, avatar_data_uri)
            # The merger that claimed the merge died right after: its claim stays, with no ClipsMerged behind it.
            await rt.recorder.record(
                MergeStarted(event_id=event_id(job_id, "merge-started"), job_id=job_id, total_clips=len(clips))
            )
            started = time.monotonic()
            # Its message comes back, and a second delivery races it: one takes over, the other sees it finish.
            await asyncio.gather(handle_clip_rendered(rendered, rt=rt), handle_clip_rendered(rendered, rt=rt))
            waited = time.monotonic() - started
            # Bounded: a stalled job would otherwise keep the stream open for ever
            events = await asyncio.wait_for(read_events(client, f"/api/ad-agent/jobs/{job_id}/events"), 60)

        history = await rt.history(job_id)
        assert [e.attempt for e in history.all(MergeStarted)] == [1, 2]
        assert len(history.all(ClipsMerged)) == 1
        assert history.has(JobCompleted)
        assert waited >= 0.9  # the live-looking claim was respected until its lease ran out
        names = [e.event for e in events if e.data]
        assert names.count("step3") == 1
        assert names[-1] == "complete"


async def test_a_merge_in_progress_is_waited_for_not_repeated(tmp_path: Path, avatar_data_uri: str) -> None:
    """Within the lease a second delivery neither merges nor drops the job: it returns once ClipsMerged is in."""
    async for server in start_server(
        tmp_path / "home", {"workers": ("prompter", "renderer", "voice")}, merge_lease_seconds=60.0
    ):
        rt = server.stack.runtime
        async with client_for(server.url, server.token) as client:
            job_id, _, rendered = await _job_with_all_clips(server, client, avatar_data_uri)
            started = time.monotonic()
            await asyncio.gather(*(handle_clip_rendered(rendered, rt=rt) for _ in range(3)))
            assert time.monotonic() - started < 30  # nobody waited out the 60 s lease
            events = await read_events(client, f"/api/ad-agent/jobs/{job_id}/events")
        history = await rt.history(job_id)
        assert [e.attempt for e in history.all(MergeStarted)] == [1]
        assert len(history.all(ClipsMerged)) == 1
        assert events[-1].event == "complete"
