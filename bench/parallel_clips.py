"""Parallel clips benchmark: a 1-clip ad and a 6-clip ad, each a whole job through the gateway over real HTTP with
every cloud provider chosen (Gemini, Veo, ElevenLabs, Cloud Storage), each real SDK talking to the repository's fake
(tests/fakes/), the fakes answering after realistic latencies scaled by 1/10:

    a Veo operation 6 s (polled from 1 s, backing off to 3 s), Gemini 0.5 s, ElevenLabs 1 s,
    the Veo quota 120 requests a minute (enforced by the fake: a request beyond it gets a 429)

Prints each job's wall time and its steps, and the 6-clip / 1-clip wall-time ratio, all measured in this one run
(goal: at most 1.15, i.e. six clips cost little more than one). A warm-up job runs first, as a long-running service
would be warm.

    .venv/bin/python bench/parallel_clips.py [--rounds 1] [--render-concurrency 2] [--log-level INFO]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.events import (  # noqa: E402
    ClipRenderingStarted,
    JobCompleted,
    JobRequested,
    MergeStarted,
    RecordedEvent,
    VoiceEnhancementStarted,
)
from services.cli.create import create_ad  # noqa: E402
from services.cli.main import local_user_token  # noqa: E402
from services.cli.server import bind, public_url, running_server  # noqa: E402
from services.runtime.logging import configure_logging  # noqa: E402
from services.runtime.settings import load_settings  # noqa: E402
from tests.fakes.cloud import Cloud  # noqa: E402

AVATAR = "data:image/jpeg;base64," + base64.b64encode((ROOT / "examples" / "avatar.jpg").read_bytes()).decode()
VOICE = "EXAVITQu4vr4xnSDxMaL"  # an ElevenLabs premade voice
ONE_CLIP = "Meet Glow, the overnight serum that works while you sleep."
SIX_CLIPS = (  # six sentences too long to share a clip (8 s of speech at most): six clips, each asked for 6 s
    "Meet Glow, the overnight serum that works while you sleep. "
    "Packed with vitamin C, it restores your natural radiance by morning. "
    "Hyaluronic acid smooths fine lines and keeps your skin soft all day. "
    "Dermatologists tested it on every skin type, even the most sensitive. "
    "Thousands of customers already wake up to brighter, healthier skin. "
    "Order today and get twenty percent off your very first bottle."
)
SCALE = 0.1  # of the providers' real latencies and of the renderer's polling (the issue's figures); --scale sets it


def _at(history: list[RecordedEvent], kind: type) -> float:
    return next(r.recorded_at for r in history if isinstance(r.event, kind))


async def run(
    rounds: int, render_concurrency: int, scale: float = SCALE
) -> tuple[dict[int, list[dict[str, float]]], int]:
    """Each job's timings, by clips per job; and the most Veo operations the fake saw running at once."""
    with tempfile.TemporaryDirectory(prefix="adagent-bench-") as tmp:
        home = Path(tmp)
        cloud = Cloud(home, poll_seconds=10 * scale)
        try:
            cloud.veo.behaviour.operation_seconds = 60 * scale
            cloud.veo.behaviour.polls_until_done = 0
            cloud.veo.behaviour.requests_per_minute = 120
            cloud.gemini.delay_s = 5 * scale
            cloud.elevenlabs.delay_s = 10 * scale
            # The providers' settings are read from the process environment, as `adagent serve` reads them.
            os.environ.update(
                {
                    **cloud.env(),
                    "ADAGENT_VEO_POLL_MAX_SECONDS": str(30 * scale),
                    "ADAGENT_VEO_REQUESTS_PER_MINUTE": "120",
                }
            )
            sock = bind("127.0.0.1", 0)
            url = public_url("127.0.0.1", sock.getsockname()[1])
            settings = load_settings(
                {**os.environ, "ADAGENT_HOME": str(home / "home")},
                public_url=url,
                render_concurrency=render_concurrency,
            )
            async with running_server(settings, sock) as stack:
                token = await local_user_token(stack.app.state.auth)

                async def job(script: str, out: str) -> dict[str, float]:
                    body = {"script": script, "character_image": AVATAR, "voice_id": VOICE}
                    started = time.monotonic()
                    outcome = await create_ad(url, body, home / out, token=token, progress=io.StringIO())
                    wall = time.monotonic() - started
                    assert outcome.job_id is not None
                    ops = [op for op in cloud.veo.operations.values() if op.started >= started]
                    veo_done = max(op.reported_done or 0.0 for op in ops) - started
                    history = await stack.runtime.store.history(outcome.job_id)
                    t0 = _at(history, JobRequested)
                    clips = _at(history, ClipRenderingStarted)
                    return {
                        "wall": wall,
                        "until Veo's last clip": veo_done,
                        "prompts": clips - t0,
                        "clips": _at(history, MergeStarted) - clips,
                        "merge": _at(history, VoiceEnhancementStarted) - _at(history, MergeStarted),
                        "voice+finalize": _at(history, JobCompleted) - _at(history, VoiceEnhancementStarted),
                    }

                await job(ONE_CLIP, "warm.mp4")
                results: dict[int, list[dict[str, float]]] = {1: [], 6: []}
                for _ in range(rounds):
                    results[1].append(await job(ONE_CLIP, "one.mp4"))
                    results[6].append(await job(SIX_CLIPS, "six.mp4"))
                assert len(cloud.veo.generate_calls) == 1 + 7 * rounds, "a clip was asked for twice (a 429?)"
                return results, cloud.veo.max_in_flight
        finally:
            cloud.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1, help="1-clip and 6-clip jobs, alternating; medians")
    parser.add_argument("--render-concurrency", type=int, default=2, help="ADAGENT_RENDER_CONCURRENCY (cores)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--scale", type=float, default=SCALE, help="of the real latencies (1.0: a Veo operation takes 60 s); the CPU "
        "work each clip costs here does not scale with it, so the ratio falls as the latencies grow",
    )
    args = parser.parse_args()
    configure_logging(args.log_level)
    results, in_flight = await run(args.rounds, args.render_concurrency, args.scale)
    walls = {}
    for clips, runs in results.items():
        walls[clips] = statistics.median(r["wall"] for r in runs)
        steps = "  ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}s" for k in runs[0] if k != "wall")
        print(f"{clips} clip(s): wall {walls[clips]:.2f}s   {steps}")
    print(f"Veo operations running at once, at most: {in_flight}")
    print(
        f"ratio wall(6 clips) / wall(1 clip) = {walls[6] / walls[1]:.2f}  (goal <= 1.15; "
        f"{args.rounds} round(s), latencies x{args.scale:g}, ADAGENT_RENDER_CONCURRENCY={args.render_concurrency}, "
        f"on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    asyncio.run(main())
