"""A whole ad rendered by `adagent create` on a machine with a distro's ffmpeg (Debian 12's 5.1 at /usr/bin/ffmpeg):
first on PATH, where the bundled build must still be the one used, and named by ADAGENT_FFMPEG, where that ffmpeg
does every step. Each MP4 is decoded whole and checked for length, sync and loudness, and its muxer tag says which
ffmpeg wrote it.

Skipped where /usr/bin/ffmpeg is absent, except under CI=true, where it must be there (CI installs Debian's)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import av
import imageio_ffmpeg
import pytest

from contracts.events import ClipRendered
from services.runtime.context import make_store
from services.runtime.media_probe import probe
from services.runtime.settings import load_settings
from tests.conftest import EXAMPLE_AVATAR
from tests.media.media_checks import ebur128

DEBIAN_FFMPEG = Path("/usr/bin/ffmpeg")
SCRIPT = "Meet Glow, the serum that works while you sleep. Wake up radiant! Order today and save twenty percent."
FPS = 25


@pytest.fixture
def debian_ffmpeg() -> Path:
    if DEBIAN_FFMPEG.is_file():
        return DEBIAN_FFMPEG
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must have Debian's ffmpeg at {DEBIAN_FFMPEG} (apt-get install ffmpeg)")
    pytest.skip(f"needs a distro ffmpeg at {DEBIAN_FFMPEG} (apt-get install ffmpeg)")


def _muxer_tag(ffmpeg: str | Path) -> str:
    """What this ffmpeg writes as an MP4's `encoder` tag: "Lavf" and its libavformat version."""
    banner = subprocess.run([str(ffmpeg), "-version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"libavformat\s+(\d+)\.\s*(\d+)\.\s*(\d+)", banner)
    assert match is not None, banner
    return "Lavf{}.{}.{}".format(*(int(n) for n in match.groups()))


def _create(tmp_path: Path, env: dict[str, str]) -> tuple[Path, str]:
    script = tmp_path / "script.txt"
    script.write_text(SCRIPT)
    out = tmp_path / "ad.mp4"
    command = [sys.executable, "-m", "services.cli.main", "create", "--script", str(script)]
    options = ["--avatar", str(EXAMPLE_AVATAR), "--aspect-ratio", "1:1", "--out", str(out)]  # 1:1: the quickest
    done = subprocess.run(
        [*command, *options],
        env={**env, "ADAGENT_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout.split()[1].rstrip(":")


def _clips(home: Path, job_id: str) -> list[ClipRendered]:
    async def read() -> list[ClipRendered]:
        store = make_store(load_settings({"ADAGENT_HOME": str(home)}))
        await store.open()
        try:
            history = await store.history(job_id)
        finally:
            await store.close()
        return [r.event for r in history if isinstance(r.event, ClipRendered)]

    clips = asyncio.run(read())
    assert len(clips) >= 2  # so the merge joins clips, the step a distro ffmpeg used to fail
    for clip in clips:
        # Each clip's sound as long as its picture, to the sample: the merger's sample-exact join relies on it.
        info = probe(unquote(urlparse(clip.clip_ref).path))
        assert info.video_duration_s == pytest.approx(clip.duration_s, abs=1e-3)
        assert info.audio_duration_s == pytest.approx(clip.duration_s, abs=1e-3)
    return clips


def _check_ad(out: Path, expected_s: float) -> str:
    """Decode every frame and sample; return the MP4's muxer tag."""
    with av.open(str(out)) as container:
        tag = container.metadata.get("encoder", "")
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        frames = sum(1 for _ in container.decode(video))
        container.seek(0)
        samples = sum(frame.samples for frame in container.decode(audio))
        rate = audio.codec_context.sample_rate
    assert frames == round(expected_s * FPS), (frames, expected_s)
    # The sound is the picture's length, to within one AAC frame.
    assert abs(samples / rate - frames / FPS) <= 1024 / rate, (samples / rate, frames / FPS)
    loudness = asyncio.run(ebur128(out))
    assert abs(loudness.integrated_lufs - -14.0) <= 1.0, loudness
    assert loudness.true_peak_dbtp <= -0.9, loudness
    return str(tag)


def test_a_distro_ffmpeg_first_on_path_is_not_used(tmp_path: Path, debian_ffmpeg: Path) -> None:
    first = tmp_path / "bin"
    first.mkdir()
    (first / "ffmpeg").symlink_to(debian_ffmpeg)
    env = {k: v for k, v in os.environ.items() if k != "ADAGENT_FFMPEG"}
    env["PATH"] = f"{first}{os.pathsep}{env.get('PATH', '')}"
    assert shutil.which("ffmpeg", path=env["PATH"]) == str(first / "ffmpeg")

    out, job_id = _create(tmp_path, env)

    tag = _check_ad(out, sum(clip.duration_s for clip in _clips(tmp_path / "home", job_id)))
    assert tag == _muxer_tag(imageio_ffmpeg.get_ffmpeg_exe()) != _muxer_tag(debian_ffmpeg)


def test_a_distro_ffmpeg_named_by_adagent_ffmpeg_renders_the_whole_ad(tmp_path: Path, debian_ffmpeg: Path) -> None:
    out, job_id = _create(tmp_path, {**os.environ, "ADAGENT_FFMPEG": str(debian_ffmpeg)})

    tag = _check_ad(out, sum(clip.duration_s for clip in _clips(tmp_path / "home", job_id)))
    assert tag == _muxer_tag(debian_ffmpeg)  # written by Debian's, not the bundled build
