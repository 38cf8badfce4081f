"""Pipeline behaviour seen on the bus and in the store: parallel clips under a limit, redeliveries without a second
effect, one merge per job, and a failing step that ends the stream with an `error` event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contracts.commands import RenderClip
from contracts.events import (
    ClipPlan,
    ClipRendered,
    ClipsMerged,
    JobRequested,
    JobStarted,
    MergeStarted,
    PromptsGenerated,
)
from services.renderer.local import LocalClipRenderer
from services.renderer.port import RenderedClip
from tests.conftest import start_server
from tests.e2e.flow import check_seed_stream, post_stream

SCRIPT = (
    "Our first line is long enough to fill most of one clip on its own. "
    "Then a second line arrives, just as long, so it needs a clip of its own. "
    "A third line follows with a few more words than the others, to be sure. "
    "And the fourth line closes the ad with a warm and friendly goodbye."
)


class CountingRenderer:
    """The real local renderer, watched: how many clips render at the same moment."""

    def __init__(self) -> None:
        self.inner = LocalClipRenderer()
        self.running = 0
        self.peak = 0
        self.calls = 0

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip | float:
        self.calls += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(0.2)  # hold the slot long enough for overlap to show
            return await self.inner.render(command, avatar, out)
        finally:
            self.running -= 1


class BrokenRenderer:
    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip | float:
        if command.clip.index == 2:
            raise RuntimeError("the GPU caught fire")
        return await LocalClipRenderer().render(command, avatar, out)


async def test_clips_render_in_parallel_up_to_the_limit_and_redeliveries_do_nothing(
    tmp_path: Path, avatar_data_uri: str
) -> None:
    renderer = CountingRenderer()
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, render_concurrency=2):
        body = {"script": SCRIPT, "character_image": avatar_data_uri}
        complete = check_seed_stream(await post_stream(server.url, body, server.token))
        history = await server.stack.runtime.store.history(complete["job_id"])
        n = complete_clips = len([r for r in history if isinstance(r.event, ClipRendered)])
        assert n >= 3
        assert renderer.peak == 2
        assert renderer.calls == complete_clips

        rt = server.stack.runtime
        job_id = complete["job_id"]
        before = await rt.store.history(job_id)
        requested = next(r.event for r in before if isinstance(r.event, JobRequested))
        plans = next(r.event for r in before if isinstance(r.event, PromptsGenerated)).clips
        # Redeliver everything once more: the request, every clip command, every clip event.
        await rt.bus.publish_event(before[0])
        for plan in plans:
            await rt.bus.send_command(
                RenderClip(
                    command_id=f"{job_id}/render/{plan.index}",
                    job_id=job_id,
                    clip=plan,
                    total_clips=len(plans),
                    avatar_ref=requested.avatar_ref,
                    character_name="c",
                    voice_id=None,
                    aspect_ratio="16:9",
                    resolution="720p",
                )
            )
        for recorded in before:
            if isinstance(recorded.event, ClipRendered):
                await rt.bus.publish_event(recorded)
        await asyncio.sleep(1.5)
        assert await rt.store.history(job_id) == before
        assert renderer.calls == complete_clips


async def test_concurrent_deliveries_of_the_final_clip_event_merge_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two mergers (or one message delivered twice) racing on the last clip: one merge, one ClipsMerged."""
    from services.merger import handler as merger_handler
    from services.merger.handler import handle_clip_rendered

    merges: list[int] = []
    real_concat = merger_handler.concat_clips

    async def counting_concat(clips: list[Path], out: Path) -> float:
        merges.append(len(clips))
        await asyncio.sleep(0.1)  # widen the race window
        return await real_concat(clips, out)

    monkeypatch.setattr(merger_handler, "concat_clips", counting_concat)
    from services.runtime.context import open_runtime
    from services.runtime.settings import load_settings
    from tests.conftest import EXAMPLE_AVATAR

    rt = await open_runtime(load_settings({"ADAGENT_HOME": str(tmp_path / "home")}))
    try:
        job = "ad_1000000000000001"
        await rt.store.append(
            JobRequested(
                event_id=f"{job}/requested",
                job_id=job,
                script="Hello there. Goodbye now.",
                avatar_ref="unused",
                character_name="c",
                voice_id=None,
                aspect_ratio="16:9",
                resolution="720p",
                owner="ann",
            )
        )
        await rt.store.append(JobStarted(event_id=f"{job}/started", job_id=job))
        renderer = LocalClipRenderer()
        recorded = []
        for i, line in enumerate(["Hello there.", "Goodbye now."], start=1):
            plan = ClipPlan(index=i, line=line, prompt="p", est_seconds=1.0)
            command = RenderClip(
                command_id=f"{job}/render/{i}",
                job_id=job,
                clip=plan,
                total_clips=2,
                avatar_ref="unused",
                character_name="c",
                voice_id=None,
                aspect_ratio="16:9",
                resolution="720p",
            )
            out = tmp_path / f"clip{i}.mp4"
            duration = (await renderer.render(command, EXAMPLE_AVATAR, out)).duration
            ref = await rt.storage.put_file(f"jobs/{job}/clips/{i}.mp4", out, "video/mp4")
            recorded.append(
                await rt.store.append(
                    ClipRendered(
                        event_id=f"{job}/clip-rendered/{i}",
                        job_id=job,
                        index=i,
                        total_clips=2,
                        clip_ref=ref,
                        duration_s=duration,
                    )
                )
            )
        await asyncio.gather(*(handle_clip_rendered(r, rt=rt) for r in [recorded[1], recorded[1], recorded[0]]))
        history = await rt.store.history(job)
        assert sum(isinstance(r.event, MergeStarted) for r in history) == 1
        assert sum(isinstance(r.event, ClipsMerged) for r in history) == 1
        assert merges == [2]
    finally:
        await rt.close()


async def test_a_failing_clip_ends_the_stream_with_an_error_event(tmp_path: Path, avatar_data_uri: str) -> None:
    async for server in start_server(tmp_path / "home", {"renderer": BrokenRenderer()}):
        body = {"script": SCRIPT, "character_image": avatar_data_uri}
        result = await post_stream(server.url, body, server.token)
        assert result.names[-1] == "error"
        error = result.data("error")[0]
        assert "Failed to generate clip 2/" in error["message"]
        # An unexpected exception is the server's business: the client gets a reference, the logs get the text.
        assert "internal error (ref " in error["message"]
        assert "the GPU caught fire" not in error["message"]
        assert "complete" not in result.names
        assert result.names[:3] == ["queued", "step1", "step1_complete"]
