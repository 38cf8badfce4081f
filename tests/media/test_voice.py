from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.merger.concat import SUFFIX
from services.runtime.ffmpeg import run_ffmpeg
from services.runtime.media_probe import decode_audio, probe
from services.voice.local import LocalVoiceEnhancer
from tests.media.media_checks import ebur128, top_level_boxes, video_packets


@pytest.fixture(scope="session")
def voiced(merged: tuple[Path, float], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float | None]:
    out = tmp_path_factory.mktemp("voiced") / "voiced.mp4"
    lufs = asyncio.run(LocalVoiceEnhancer().enhance(merged[0], out, voice_id="ignored-locally"))
    return out, lufs


async def test_loudness_is_minus_14_lufs_with_true_peak_below_minus_1(voiced: tuple[Path, float | None]) -> None:
    path, reported = voiced
    measured = await ebur128(path)
    assert measured.integrated_lufs == pytest.approx(-14.0, abs=0.5)
    assert measured.true_peak_dbtp <= -1.0
    assert reported == pytest.approx(measured.integrated_lufs, abs=0.1)


def test_picture_is_untouched_and_lengths_kept(voiced: tuple[Path, float | None], merged: tuple[Path, float]) -> None:
    path, _ = voiced
    assert video_packets(path) == video_packets(merged[0])
    info = probe(path)
    assert info.audio_sample_rate == 48000
    assert info.video_duration_s == pytest.approx(merged[1], abs=1e-3)
    assert len(decode_audio(path)) / 48000 == pytest.approx(merged[1], abs=0.040)


def test_moov_comes_before_mdat(voiced: tuple[Path, float | None]) -> None:
    boxes = top_level_boxes(voiced[0])
    assert boxes.index("moov") < boxes.index("mdat")


async def test_silence_passes_through_unmeasured(tmp_path: Path) -> None:
    """A silent cut as the merger writes it (PCM in MOV) comes out an MP4 with AAC sound, as every ad does."""
    silent = tmp_path / f"silent{SUFFIX}"
    await run_ffmpeg(
        "-f", "lavfi", "-i", "color=c=gray:s=320x240:r=25:d=1",
        "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
        "-t", "1", "-c:v", "libx264", "-c:a", "pcm_s24le", "-f", "mov", str(silent),
    )  # fmt: skip
    out = tmp_path / "out.mp4"
    assert await LocalVoiceEnhancer().enhance(silent, out, None) is None
    info = probe(out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.audio_duration_s == pytest.approx(1.0, abs=0.03)
