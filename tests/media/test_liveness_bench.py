"""bench/liveness.py on real ads: the example script, one clip per sentence, rendered by the local renderer and
joined by the merger, for three faces of different shapes. The bench measures what a viewer sees (a face tracker on
the decoded frames) and must pass each; the same ad with the avatar's liveness turned off (the jaw only, from the
loudness) must fail it, so the bench can fail; and what the bench finds must be what was put into a video."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from bench.liveness import track
from services.merger.concat import concat_clips
from services.renderer.face_model import LEFT_EYE, RIGHT_EYE, detect_face
from services.renderer.local import LocalClipRenderer
from tests.media.conftest import render_command
from tests.media.faces import EXAMPLE, drawn_face, grace_hopper

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "examples" / "script.txt").read_text(encoding="utf-8").strip()
SENTENCES = re.findall(r"[^.!?]+[.!?]", SCRIPT)

SHORT = 4  # sentences of the other faces' ads (about 15 s; six blinks): the suite's time is counted
STILL = 2  # and of the ad without liveness (about 7 s: long enough for SHUT_AT)
SHUT_AT = (20, 61, 90, 118)  # frames whose eyes get painted shut (with the frame either side)
ROLL_DEG = 1.5  # amplitude of the head roll put in


def _ad(avatar: Path, aspect_ratio: str, out: Path, *, liveness: bool = True, sentences: int = len(SENTENCES)) -> Path:
    """The example script (its first `sentences`) as an ad: a clip per sentence, rendered two at a time as two
    workers would, joined."""
    renderer = LocalClipRenderer(liveness=liveness)
    lines = SENTENCES[:sentences]
    clips = [out.parent / f"{out.stem}-{i}.mp4" for i in range(1, len(lines) + 1)]

    async def run() -> None:
        workers = asyncio.Semaphore(2)

        async def one(index: int, line: str, clip: Path) -> None:
            async with workers:
                await renderer.render(render_command(line.strip(), aspect_ratio, "720p", index), avatar, clip)

        await asyncio.gather(*(one(i, line, c) for i, (line, c) in enumerate(zip(lines, clips, strict=True), 1)))
        await concat_clips(clips, out)

    asyncio.run(run())
    return out


def _bench(clip: Path, script: Path) -> tuple[int, dict[str, object]]:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "liveness.py"), str(clip), "--script", str(script), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert run.stdout, run.stderr
    return run.returncode, json.loads(run.stdout)


def _figure(report: dict[str, object], starts: str) -> dict[str, object]:
    figures = report["figures"]
    assert isinstance(figures, list)
    return next(f for f in figures if str(f["name"]).startswith(starts))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("liveness")
    (path / "script.txt").write_text(SCRIPT, encoding="utf-8")
    (path / "short.txt").write_text("".join(SENTENCES[:SHORT]).strip(), encoding="utf-8")
    (path / "still.txt").write_text("".join(SENTENCES[:STILL]).strip(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def still_ad(folder: Path) -> Path:
    """The example's ad with the liveness off: the jaw moves with the loudness, nothing else does."""
    return _ad(EXAMPLE, "16:9", folder / "still.mp4", liveness=False, sentences=STILL)


@pytest.fixture(scope="module")
def still_report(still_ad: Path, folder: Path) -> tuple[int, dict[str, object]]:
    return _bench(still_ad, folder / "still.txt")


@pytest.mark.parametrize(
    ("face", "aspect_ratio"),
    [("example", "16:9"), ("hopper", "9:16"), ("drawn", "1:1")],
)
def test_the_ad_passes_the_liveness_bench_on_faces_of_every_shape(face: str, aspect_ratio: str, folder: Path) -> None:
    avatar = {"example": EXAMPLE, "hopper": grace_hopper(), "drawn": drawn_face(folder)}[face]
    whole = face == "example"
    ad = _ad(avatar, aspect_ratio, folder / f"{face}.mp4", sentences=len(SENTENCES) if whole else SHORT)
    code, report = _bench(ad, folder / ("script.txt" if whole else "short.txt"))
    failed = [f for f in report["figures"] if not f["pass"]]  # type: ignore[union-attr]
    assert report["frames_with_face"] == report["frames"]
    assert report["script_aligned"] is True
    assert failed == [] and code == 0, json.dumps(report, indent=1)


def test_the_same_ad_without_liveness_fails_the_bench(still_report: tuple[int, dict[str, object]]) -> None:
    code, report = still_report
    assert code == 1 and report["passed"] is False
    assert _figure(report, "lip opening")["pass"] is True  # the jaw still follows the voice
    for name in ("blinks", "head roll, std", "mouth width"):
        assert _figure(report, name)["pass"] is False, name


def _roll(frame: int) -> float:
    return ROLL_DEG * math.sin(2 * math.pi * 0.4 * frame / 25)


def _alive(clip: Path, out: Path) -> None:
    """The clip with its eyes painted shut (skin over the eye, a lash line) around SHUT_AT and the whole picture
    rolled by _roll: blinks and head motion the bench must find, made outside the renderer."""
    with av.open(str(clip)) as source, av.open(str(out), "w") as sink:
        video = sink.add_stream("libx264", rate=25)
        video.width, video.height = source.streams.video[0].width, source.streams.video[0].height
        audio = sink.add_stream("aac", rate=source.streams.audio[0].rate)
        box = None
        for i, frame in enumerate(source.decode(video=0)):
            img = frame.to_ndarray(format="rgb24").copy()
            points = track(img, box, detect_face)
            assert points is not None
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            box = (int(x0), int(y0), int(x1), int(y1))
            if any(abs(i - at) <= 1 for at in SHUT_AT):
                for ring in (RIGHT_EYE, LEFT_EYE):
                    eye = points[list(ring)]
                    centre = eye.mean(axis=0)
                    skin = [int(c) for c in img[int(centre[1] - 18), int(centre[0])]]
                    cv2.fillPoly(img, [np.round((eye - centre) * 1.3 + centre).astype(np.int32)], skin)
                    ends = (tuple(np.round(eye[0]).astype(int)), tuple(np.round(eye[8]).astype(int)))
                    cv2.line(img, ends[0], ends[1], (60, 40, 30), 2)
            h, w = img.shape[:2]
            turn = cv2.getRotationMatrix2D((w / 2, h / 2), -_roll(i), 1.0)
            img = cv2.warpAffine(img, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                sink.mux(packet)
        sink.mux(video.encode())
        source.seek(0)
        for sound in source.decode(audio=0):
            sound.pts = None
            for packet in audio.encode(sound):
                sink.mux(packet)
        sink.mux(audio.encode())


def test_the_bench_finds_blinks_and_head_roll_put_into_the_video(
    still_ad: Path, folder: Path, tmp_path: Path, still_report: tuple[int, dict[str, object]]
) -> None:
    alive = tmp_path / "alive.mp4"
    _alive(still_ad, alive)
    _, result = _bench(alive, folder / "still.txt")
    frames = still_report[1]["frames"]
    assert isinstance(frames, int) and frames > SHUT_AT[-1] + 12
    assert result["blink_times_s"] == [pytest.approx(at / 25, abs=0.05) for at in SHUT_AT]
    truth = float(np.std([_roll(i) for i in range(frames)]))
    roll = _figure(result, "head roll, std")
    assert isinstance(roll["value"], float) and roll["value"] == pytest.approx(truth, abs=0.15)
    assert roll["pass"] is True


def test_it_tracks_the_face_on_every_frame_and_finds_the_script_in_the_audio(
    still_report: tuple[int, dict[str, object]],
) -> None:
    _, result = still_report
    assert result["frames_with_face"] == result["frames"]
    matches = result["sentence_matches"]
    assert isinstance(matches, list) and len(matches) == STILL and min(matches) > 0.8
    assert result["script_aligned"] is True


def test_a_script_the_ad_does_not_say_is_not_aligned(still_ad: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("Our bicycles are built by hand in a small town. Ride one along the sea this summer!")
    code, result = _bench(still_ad, other)
    assert code == 1 and result["script_aligned"] is False
