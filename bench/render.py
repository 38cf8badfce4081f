"""Render benchmark: a ~30 s script (bench/scripts/thirty_seconds.txt) at 720p and 1080p on the embedded stack,
over real HTTP, as a client would use it.

Prints, per resolution, the wall time of the whole job divided by the video's duration (the real-time factor),
the time of each step, and the merge time as a share of the video's duration. All ratios come from one run.

    .venv/bin/python bench/render.py [--resolutions 720p 1080p] [--aspect-ratio 16:9]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.events import (  # noqa: E402
    ClipRenderingStarted,
    ClipsMerged,
    FinalizationStarted,
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
from services.runtime.media_probe import probe  # noqa: E402
from services.runtime.settings import load_settings  # noqa: E402

SCRIPT = (ROOT / "bench" / "scripts" / "thirty_seconds.txt").read_text()
AVATAR = ROOT / "examples" / "avatar.jpg"


def _at(history: list[RecordedEvent], kind: type) -> float:
    return next(r.recorded_at for r in history if isinstance(r.event, kind))


async def bench(resolution: str, aspect_ratio: str, home: Path) -> dict[str, float]:
    sock = bind("127.0.0.1", 0)
    url = public_url("127.0.0.1", sock.getsockname()[1])
    settings = load_settings({"ADAGENT_HOME": str(home)}, public_url=url)
    body = {
        "script": SCRIPT,
        "character_image": "data:image/jpeg;base64," + base64.b64encode(AVATAR.read_bytes()).decode(),
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
    }
    async with running_server(settings, sock) as stack:
        token = await local_user_token(stack.app.state.auth)
        # Warm the voice model once, as a long-running service would have it warm.
        await create_ad(url, {**body, "script": "Warm up."}, home / "warm.mp4", token=token, progress=io.StringIO())
        started = time.monotonic()
        outcome = await create_ad(url, body, home / "ad.mp4", token=token, progress=io.StringIO())
        wall = time.monotonic() - started
        assert outcome.job_id is not None
        history = await stack.runtime.store.history(outcome.job_id)
    duration = probe(home / "ad.mp4").duration_s or 0.0
    t0 = _at(history, JobRequested)
    steps = {
        "prompts": _at(history, ClipRenderingStarted) - t0,
        "clips": _at(history, MergeStarted) - _at(history, ClipRenderingStarted),
        "merge": _at(history, ClipsMerged) - _at(history, MergeStarted),
        "voice": _at(history, FinalizationStarted) - _at(history, VoiceEnhancementStarted),
        "finalize": _at(history, JobCompleted) - _at(history, FinalizationStarted),
    }
    return {"wall": wall, "duration": duration, **steps}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolutions", nargs="+", default=["720p", "1080p"])
    parser.add_argument("--aspect-ratio", default="16:9")
    args = parser.parse_args()
    configure_logging("WARNING")
    print(f"script: {len(SCRIPT.split())} words; aspect ratio {args.aspect_ratio}")
    for resolution in args.resolutions:
        with tempfile.TemporaryDirectory() as tmp:
            r = await bench(resolution, args.aspect_ratio, Path(tmp))
        steps = "  ".join(f"{k} {r[k]:.2f}s" for k in ("prompts", "clips", "merge", "voice", "finalize"))
        print(
            f"{resolution}: video {r['duration']:.2f}s, wall {r['wall']:.2f}s, "
            f"wall/duration {r['wall'] / r['duration']:.3f}, merge share {100 * r['merge'] / r['duration']:.2f}%"
        )
        print(f"        {steps}")


if __name__ == "__main__":
    asyncio.run(main())
