"""bench/liveness.py measures a real render: the example avatar saying two sentences, through the local renderer.

Today's renderer animates a still photo with a hinged jaw, so the bench must find what a viewer sees: the mouth
opening with the voice (a figure it passes), no blink and a head that does not move (figures it fails), and so it
exits 1. When the renderer of issue 12 blinks and moves the head, the blink and roll assertions here are to be
turned round (the bench's goals stay)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.renderer.local import LocalClipRenderer
from tests.media.conftest import render_command

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "avatar.jpg"
SCRIPT = "Meet Glow, the serum that works while you sleep. Order it today and get twenty percent off!"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, object]]:
    folder = tmp_path_factory.mktemp("liveness")
    clip, script = folder / "clip.mp4", folder / "script.txt"
    script.write_text(SCRIPT)
    asyncio.run(LocalClipRenderer().render(render_command(SCRIPT, "16:9", "720p"), EXAMPLE, clip))
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "liveness.py"), str(clip), "--script", str(script), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.stdout, run.stderr
    return run.returncode, json.loads(run.stdout)


def _figure(report: dict[str, object], starts: str) -> dict[str, object]:
    figures = report["figures"]
    assert isinstance(figures, list)
    return next(f for f in figures if str(f["name"]).startswith(starts))


def test_the_bench_fails_todays_still_photo_renderer(report: tuple[int, dict[str, object]]) -> None:
    code, result = report
    assert code == 1 and result["passed"] is False
    blinks = _figure(result, "blinks")
    assert blinks["value"] == 0 and blinks["pass"] is False
    roll = _figure(result, "head roll, std")
    assert isinstance(roll["value"], float) and roll["value"] < 0.7 and roll["pass"] is False


def test_it_tracks_the_face_on_every_frame_and_finds_the_script_in_the_audio(
    report: tuple[int, dict[str, object]],
) -> None:
    _, result = report
    assert result["frames_with_face"] == result["frames"]
    matches = result["sentence_matches"]
    assert isinstance(matches, list) and len(matches) == 2 and min(matches) > 0.8
    assert result["script_aligned"] is True


def test_the_mouth_opening_with_the_voice_passes(report: tuple[int, dict[str, object]]) -> None:
    _, result = report
    correlation = _figure(result, "lip opening")
    assert correlation["pass"] is True
