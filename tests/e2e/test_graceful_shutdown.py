"""Graceful shutdown of `adagent service renderer`: SIGTERM in the middle of a clip lets that clip finish (its
ClipRendered is recorded) and exits 0, while the clips it had not started stay queued for another process.

No timing guesses: the first renderer's clip provider holds each clip open until the test releases it, so the
SIGTERM arrives while a clip is provably in flight; it prints when a clip starts, so the test knows which process
rendered what."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contracts.commands import RenderClip
from contracts.events import ClipPlan, ClipRendered, JobRequested, JobStarted
from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.context import open_runtime
from services.runtime.settings import load_settings
from services.runtime.store.postgres import drop_schema
from tests.brokers import AMQP_URL, DATABASE_URL, fresh_namespace
from tests.conftest import EXAMPLE_AVATAR

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.timeout(120)]

LINES = ("Meet Glow.", "It works while you sleep.", "Wake up radiant.")

# `adagent service renderer` exactly as the CLI runs it, with the real local clip provider wrapped so that each clip
# announces itself on stderr and, until the file named by GATE exists, does not finish.
RENDERER = """
import asyncio, os, sys
from pathlib import Path
from services.cli.main import main
from services.renderer import service
from services.renderer.local import LocalClipRenderer

class GatedRenderer(LocalClipRenderer):
    async def render(self, command, avatar, out):
        print(f"render-start {command.clip.index}", file=sys.stderr, flush=True)
        while not Path(os.environ["GATE"]).exists():
            await asyncio.sleep(0.05)
        return await super().render(command, avatar, out)

service.LocalClipRenderer = GatedRenderer
sys.exit(main(["service", "renderer"]))
"""


def _starts(stderr: str) -> list[int]:
    return [int(i) for i in re.findall(r"^render-start (\d+)$", stderr, re.M)]


class Renderer:
    """One renderer process, its stderr collected to a file (no pipe to fill up)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", RENDERER], env=env, stdout=subprocess.DEVNULL, stderr=err, text=True
            )

    def stderr(self) -> str:
        return self.log.read_text()

    async def wait_for(self, pattern: str, within_s: float = 30) -> None:
        deadline = time.monotonic() + within_s
        while not re.search(pattern, self.stderr(), re.M):
            assert self.process.poll() is None, self.stderr()[-3000:]
            assert time.monotonic() < deadline, (pattern, self.stderr()[-3000:])
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, 60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def test_sigterm_finishes_the_clip_in_flight_and_leaves_the_rest_for_another_renderer(tmp_path: Path) -> None:
    namespace = fresh_namespace("grace")
    gate = tmp_path / "release"
    env = {
        **os.environ,
        "ADAGENT_HOME": str(tmp_path / "home"),
        "ADAGENT_BUS": "rabbitmq",
        "ADAGENT_AMQP_URL": AMQP_URL,
        "ADAGENT_AMQP_NAMESPACE": namespace,
        "ADAGENT_STORE": "postgres",
        "ADAGENT_DATABASE_URL": DATABASE_URL,
        "ADAGENT_DATABASE_SCHEMA": namespace,
        "ADAGENT_SIGNING_KEY": "test-signing-key-shared-by-all-processes",
        "ADAGENT_RENDER_CONCURRENCY": "1",  # prefetch 1: the other clips stay in the queue, not in this process
        "ADAGENT_SHUTDOWN_GRACE_SECONDS": "45",
        "GATE": str(gate),
    }
    job = "ad_" + namespace.split("_")[1].ljust(16, "0")
    rt = await open_runtime(load_settings(env))
    first = second = None
    try:
        first = Renderer(env, tmp_path / "renderer-1.log")
        await first.wait_for(r"consuming from ")  # its queue exists and is bound: the commands are routable

        avatar_ref = await rt.storage.put_file(f"jobs/{job}/avatar.jpg", EXAMPLE_AVATAR, "image/jpeg")
        await rt.store.append(
            JobRequested(
                event_id=f"{job}/requested",
                job_id=job,
                script=" ".join(LINES),
                avatar_ref=avatar_ref,
                character_name="Glow",
                voice_id=None,
                aspect_ratio="16:9",
                resolution="720p",
                owner="ann",
            )
        )
        await rt.store.append(JobStarted(event_id=f"{job}/started", job_id=job))
        for index, line in enumerate(LINES, start=1):
            await rt.bus.send_command(
                RenderClip(
                    command_id=f"{job}/render/{index}",
                    job_id=job,
                    clip=ClipPlan(index=index, line=line, prompt="p", est_seconds=1.0),
                    total_clips=len(LINES),
                    avatar_ref=avatar_ref,
                    character_name="Glow",
                    voice_id=None,
                    aspect_ratio="16:9",
                    resolution="720p",
                )
            )

        # Clip 1 is in flight and held there; SIGTERM now, and wait until the service says it is draining.
        await first.wait_for(r"^render-start 1$")
        first.process.send_signal(signal.SIGTERM)
        await first.wait_for(r"adagent renderer stopping")
        await asyncio.sleep(0.5)  # a late delivery, if the broker sent one, would have started by now
        gate.touch()  # let the clip finish, inside the grace period
        code = await first.stop()
        stderr1 = first.stderr()
        assert code == 0, stderr1[-3000:]
        assert "Traceback" not in stderr1, stderr1[-3000:]
        assert _starts(stderr1) == [1], stderr1[-3000:]
        rendered = [r.event for r in await rt.store.history(job) if isinstance(r.event, ClipRendered)]
        assert [e.index for e in rendered] == [1]  # recorded before the process exited

        # The clips it never started are still queued: another renderer picks them up and the job's clips complete.
        second = Renderer(env, tmp_path / "renderer-2.log")
        deadline = time.monotonic() + 45
        while len({e.index for e in rendered}) < len(LINES):
            assert second.process.poll() is None, second.stderr()[-3000:]
            assert time.monotonic() < deadline, second.stderr()[-3000:]
            await asyncio.sleep(0.2)
            rendered = [r.event for r in await rt.store.history(job) if isinstance(r.event, ClipRendered)]
        code = await second.stop()
        stderr2 = second.stderr()
        assert code == 0, stderr2[-3000:]
        assert "Traceback" not in stderr2, stderr2[-3000:]
        assert sorted(_starts(stderr2)) == [2, 3], stderr2[-3000:]
        # Every clip rendered exactly once across both processes, and recorded exactly once.
        assert sorted(_starts(stderr1) + _starts(stderr2)) == [1, 2, 3]
        rendered = [r.event for r in await rt.store.history(job) if isinstance(r.event, ClipRendered)]
        assert sorted(e.index for e in rendered) == [1, 2, 3]
    finally:
        for renderer in (first, second):
            if renderer is not None:
                renderer.kill()
        await rt.close()
        await delete_namespace(AMQP_URL, namespace)
        await drop_schema(DATABASE_URL, namespace)
