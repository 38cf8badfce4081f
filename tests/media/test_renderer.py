from __future__ import annotations

import math
from collections.abc import Callable

import av
import numpy as np
import pytest

from services.renderer.voices import get_voice
from services.runtime.media_probe import decode_audio, probe, rms_dbfs
from tests.media.conftest import Rendered
from tests.media.media_checks import top_level_boxes

FPS = 25
SKIN = np.array([240, 200, 160])


def synthesize(line: str) -> tuple[np.ndarray, int]:
    """The default local voice's samples and sample rate for `line`."""
    speech = get_voice(None).synthesize(line)
    return speech.samples, speech.sample_rate


def _speech_seconds(line: str) -> float:
    samples, rate = synthesize(line)
    return len(samples) / rate


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "size"),
    [
        ("16:9", "720p", (1280, 720)),
        ("9:16", "720p", (720, 1280)),
        ("1:1", "720p", (720, 720)),
        ("9:16", "1080p", (1080, 1920)),
    ],
)
def test_clip_is_h264_aac_at_the_exact_frame_size_and_speech_length(
    aspect_ratio: str,
    resolution: str,
    size: tuple[int, int],
    ad_clips: list[Rendered],
    render_one: Callable[[str, str], Rendered],
) -> None:
    clip = ad_clips[1] if (aspect_ratio, resolution) == ("16:9", "720p") else render_one(aspect_ratio, resolution)
    info = probe(clip.path)

    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == size
    assert info.fps == FPS
    assert info.audio_sample_rate == 48000

    speech = _speech_seconds(clip.line)
    assert math.isclose(clip.duration_s * FPS, round(clip.duration_s * FPS))  # whole frames
    assert 0.2 <= clip.duration_s - speech <= 0.3  # the line plus a short silent tail
    assert info.video_duration_s == pytest.approx(clip.duration_s, abs=1e-3)
    assert info.audio_duration_s == pytest.approx(clip.duration_s, abs=1e-3)

    audio = decode_audio(clip.path)
    assert len(audio) / 48000 == pytest.approx(clip.duration_s, abs=1e-3)
    assert rms_dbfs(audio) > -40
    assert rms_dbfs(audio[-int(0.15 * 48000) :]) < -50  # the tail is silence

    boxes = top_level_boxes(clip.path)
    assert boxes.index("moov") < boxes.index("mdat")


@pytest.mark.parametrize(("aspect_ratio", "resolution"), [("16:9", "720p"), ("9:16", "720p"), ("1:1", "720p")])
def test_avatar_fills_the_frame_centred_and_undistorted(
    aspect_ratio: str, resolution: str, ad_clips: list[Rendered], render_one: Callable[[str, str], Rendered]
) -> None:
    clip = ad_clips[1] if (aspect_ratio, resolution) == ("16:9", "720p") else render_one(aspect_ratio, resolution)
    with av.open(str(clip.path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    height, width, _ = frame.shape

    # No black bars: the blurred backdrop reaches every edge.
    for edge in (frame[0], frame[-1], frame[:, 0], frame[:, -1]):
        assert edge.mean() > 30

    # The face (a 300x360 ellipse in the avatar) sits in the middle, with its proportions kept.
    assert np.abs(frame[height // 2, width // 2] - SKIN).max() < 30
    ys, xs = np.nonzero(np.abs(frame - SKIN).max(axis=2) < 30)
    face_w, face_h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert face_w / face_h == pytest.approx(300 / 360, rel=0.04)
    assert (xs.min() + xs.max()) / 2 == pytest.approx(width / 2, abs=4)


def test_speech_length_is_deterministic() -> None:
    line = "Fresh beans, roasted on Monday, in your cup by Friday."
    first, rate = synthesize(line)
    second, _ = synthesize(line)
    assert rate == 22050
    assert first.dtype == np.int16
    assert len(first) == len(second) > rate  # identical length; the samples themselves carry generator noise
    assert rms_dbfs(first) > -30
