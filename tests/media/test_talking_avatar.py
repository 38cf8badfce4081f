"""The talking avatar: face and mouth found on a photo, the mouth moving with the voice, sizes, render speed."""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from services.renderer import mouth
from services.renderer.face import find_landmarks
from services.renderer.face_model import LIPS_OUTER
from services.renderer.local import FPS, LocalClipRenderer, PushIn, Scene, compose_scene
from services.runtime.media_probe import decode_audio, probe
from tests.media.conftest import render_command

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "avatar.jpg"
LINE = "Meet Glow, the serum that works while you sleep."
SIX_FORMATS = [
    ("16:9", "720p", (1280, 720)),
    ("9:16", "720p", (720, 1280)),
    ("1:1", "720p", (720, 720)),
    ("16:9", "1080p", (1920, 1080)),
    ("9:16", "1080p", (1080, 1920)),
    ("1:1", "1080p", (1080, 1080)),
]

Frame = npt.NDArray[np.int16]


def _render(
    renderer: LocalClipRenderer, line: str, avatar: Path, out: Path, shape: str = "16:9", res: str = "720p"
) -> float:
    return asyncio.run(renderer.render(render_command(line, shape, res), avatar, out)).duration


def _frames(path: Path) -> list[Frame]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def no_face(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ramp = np.linspace(40, 220, 480, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (360, 1)), np.tile(ramp[::-1], (360, 1)), np.full((360, 480), 120.0)], axis=2)
    path = tmp_path_factory.mktemp("gradient") / "gradient.png"
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def talking(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The example avatar saying LINE at 16:9 720p, with its mouth moving and with it still."""
    folder = tmp_path_factory.mktemp("talking")
    moving, still = folder / "moving.mp4", folder / "still.mp4"
    _render(LocalClipRenderer(), LINE, EXAMPLE, moving)
    _render(LocalClipRenderer(animate_mouth=False), LINE, EXAMPLE, still)
    return moving, still


def test_the_face_of_the_example_is_found_where_it_is() -> None:
    found = find_landmarks(EXAMPLE)
    assert found is not None
    # The astronaut's face in the 512x512 photo: centred near x=225, eyes ~y=110, mouth ~y=145.
    box = found.box
    assert box.x0 < 225 < box.x1 and box.y0 < 110 < box.y1
    assert 80 <= box.w <= 130
    mouth = found.group(LIPS_OUTER).mean(axis=0)
    assert mouth[0] == pytest.approx(224, abs=8) and mouth[1] == pytest.approx(146, abs=8)


def test_no_face_means_no_rig(no_face: Path) -> None:
    assert find_landmarks(no_face) is None
    assert compose_scene(no_face, (1382, 778)).rig is None


def _mouth_region(push: PushIn, n: int, scene: Scene) -> tuple[slice, slice]:
    """The mouth and jaw on frame n, tracked through the camera's move."""
    assert scene.landmarks is not None
    lips = scene.landmarks.group(LIPS_OUTER)
    (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
    w = x1 - x0
    left, top = push.to_frame(n, x0 - 0.1 * w, y0 - 0.2 * w)
    right, bottom = push.to_frame(n, x1 + 0.1 * w, y1 + 0.5 * w)
    return slice(round(top), round(bottom)), slice(round(left), round(right))


def test_the_mouth_moves_while_speaking_and_rests_in_silence(talking: tuple[Path, Path]) -> None:
    moving, still = (_frames(path) for path in talking)
    assert len(moving) == len(still)
    frames = len(moving)
    command = render_command(LINE, "16:9", "720p")
    renderer = LocalClipRenderer()
    push = renderer.push_in(command, frames)
    scene = compose_scene(EXAMPLE, push.canvas)
    assert scene.rig is not None
    opening = mouth.openness(decode_audio(talking[0]), 48000, frames, FPS)

    def mad(a: Frame, b: Frame, n: int) -> float:
        region = _mouth_region(push, n, scene)
        return float(np.abs(a[region] - b[region]).mean())

    against_still = [mad(moving[n], still[n], n) for n in range(frames)]
    step_moving = [mad(moving[n + 1], moving[n], n) for n in range(frames - 1)]
    step_still = [mad(still[n + 1], still[n], n) for n in range(frames - 1)]
    speaking = [n for n in range(frames - 1) if opening[n] > 0.4]
    tail = range(frames - 4, frames - 1)  # the last steps of the silent tail (6 frames, after the smoothing ends)

    assert len(speaking) > frames // 4
    # Speaking: the mouth is open compared with the still render, and changes from frame to frame far more than
    # the push-in alone changes the same region.
    open_median = float(np.median([against_still[n] for n in speaking]))
    assert open_median > 6
    assert max(step_moving) > 6
    assert np.mean(step_moving) > 2.5 * np.mean(step_still)
    # Silence: from frame to frame the region changes no more than the still render's does (the camera's drift).
    assert all(step_moving[n] <= max(step_still[m] for m in tail) + 0.5 for n in tail)
    assert max(step_moving[n] for n in tail) < 1.5
    # At rest the lips are closed, so the mouth rests as it started: the clip's last frame looks like its first
    # (the joins between clips are seamless), not like the photo's parted smile or an open mouth.
    # (The camera is at rest at both ends too; the still render gives what encoding alone changes.)
    assert mad(moving[-1], moving[0], 0) <= mad(still[-1], still[0], 0) + 1.0


def test_an_image_without_a_face_renders_without_mouth_motion(no_face: Path, tmp_path: Path) -> None:
    command = render_command("Hello.", "16:9", "720p")
    assert compose_scene(no_face, LocalClipRenderer().push_in(command, 1).canvas).rig is None
    _render(LocalClipRenderer(), "Hello there.", no_face, tmp_path / "face.mp4")
    _render(LocalClipRenderer(animate_mouth=False), "Hello there.", no_face, tmp_path / "still.mp4")
    talking, still = _frames(tmp_path / "face.mp4"), _frames(tmp_path / "still.mp4")
    assert len(talking) == len(still) > FPS // 2
    assert all(np.array_equal(a, b) for a, b in zip(talking, still, strict=True))


@pytest.mark.parametrize(("aspect_ratio", "resolution", "size"), SIX_FORMATS)
def test_every_format_has_its_exact_size(
    aspect_ratio: str, resolution: str, size: tuple[int, int], tmp_path: Path
) -> None:
    out = tmp_path / "hi.mp4"
    duration = _render(LocalClipRenderer(), "Hi.", EXAMPLE, out, aspect_ratio, resolution)
    info = probe(out)
    assert (info.width, info.height) == size
    assert (info.video_codec, info.audio_codec, info.fps, info.audio_sample_rate) == ("h264", "aac", FPS, 48000)
    assert info.video_duration_s == pytest.approx(duration, abs=1e-3)
    assert info.audio_duration_s == pytest.approx(duration, abs=1e-3)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.mark.parametrize("resolution", ["720p", "1080p"])
def test_render_speed(resolution: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Wall and CPU time of one ~6 s clip over its duration, printed.

    Only the CPU time is asserted, loosely: wall time depends on what else the machine is doing.
    """
    line = "Tired of dull skin? Meet Glow, the overnight serum that works while you sleep, every night."
    renderer = LocalClipRenderer()
    _render(renderer, "Warm up.", EXAMPLE, tmp_path / "warm.mp4", "16:9", resolution)  # voice model, face cache
    started, cpu = time.monotonic(), _cpu_seconds()
    duration = _render(renderer, line, EXAMPLE, tmp_path / "clip.mp4", "16:9", resolution)
    wall, cpu = time.monotonic() - started, _cpu_seconds() - cpu
    with capsys.disabled():
        print(
            f"\n{resolution}: {duration:.2f} s of video in {wall:.2f} s wall (ratio {wall / duration:.2f}), "
            f"{cpu:.2f} s CPU (ratio {cpu / duration:.2f})"
        )
    assert 5 <= duration <= 8
    assert cpu / duration < 2.0
