"""An ffmpeg that cannot run the pipeline, named by ADAGENT_FFMPEG, stops `adagent serve` and the services that use
ffmpeg at start, with one line naming the binary, its version, what it lacks and how to fix it; not at a job's merge.

The stand-ins are small shell scripts: one prints an old version, one is the bundled build with libx264 and libass's
`ass` filter cut from its listings (as a distro's "free" or minimal build has them)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

from tests.brokers import AMQP_URL, fresh_namespace
from tests.conftest import EXAMPLE_AVATAR
from tests.e2e.processes import COMMAND


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def old_ffmpeg(folder: Path) -> Path:
    banner = "ffmpeg version 4.2.7-0ubuntu0.1 Copyright (c) 2000-2022 the FFmpeg developers"
    return _script(folder / "ffmpeg-4.2", f'echo "{banner}" >&2\n')


def ffmpeg_without_x264_and_libass(folder: Path) -> Path:
    real = imageio_ffmpeg.get_ffmpeg_exe()
    return _script(
        folder / "ffmpeg-minimal",
        f"""case "$*" in
  *-encoders*) "{real}" "$@" | grep -v ' libx264' ;;
  *-filters*) "{real}" "$@" | grep -v ' ass ' ;;
  *) exec "{real}" "$@" ;;
esac
""",
    )


def _run(tmp_path: Path, ffmpeg: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env={**os.environ, "ADAGENT_HOME": str(tmp_path / "home"), "ADAGENT_FFMPEG": str(ffmpeg), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _stopped_with(done: subprocess.CompletedProcess[str], *named: str) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    message = lines[0]
    assert message.startswith("adagent: bad setting: ffmpeg at "), message
    for part in (*named, "unset ADAGENT_FFMPEG"):
        assert part in message, message
    return message


def test_an_old_ffmpeg_stops_serve_at_start(tmp_path: Path) -> None:
    ffmpeg = old_ffmpeg(tmp_path)
    started = time.monotonic()
    done = _run(tmp_path, ffmpeg, "serve", "--port", "0")
    _stopped_with(done, str(ffmpeg), "version 4.2.7-0ubuntu0.1", "older than 4.4")
    assert time.monotonic() - started < 20


def test_an_ffmpeg_without_libx264_or_libass_stops_serve_naming_both(tmp_path: Path) -> None:
    ffmpeg = ffmpeg_without_x264_and_libass(tmp_path)
    banner = subprocess.run([str(ffmpeg), "-version"], capture_output=True, text=True, check=True).stdout
    version = banner.split()[2]  # "ffmpeg version n9.0.2-…"
    message = _stopped_with(
        _run(tmp_path, ffmpeg, "serve", "--port", "0"), f"{ffmpeg} (version {version})", "encoder libx264", "filter ass"
    )
    lacking = message.split(" lacks ", 1)[1].split(";")[0]
    assert re.findall(r"(encoder|filter|muxer|demuxer) (\w+)", lacking) == [("encoder", "libx264"), ("filter", "ass")]


def test_create_stops_before_making_a_job(tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text("Wake up radiant.")
    out = tmp_path / "ad.mp4"
    options = ["--script", str(script), "--avatar", str(EXAMPLE_AVATAR), "--out", str(out)]
    done = _run(tmp_path, old_ffmpeg(tmp_path), "create", *options)
    _stopped_with(done, "older than 4.4")
    assert not out.exists()


@pytest.mark.parametrize("service", ["renderer", "merger", "voice"])
def test_a_service_that_runs_ffmpeg_stops_at_start(tmp_path: Path, service: str) -> None:
    done = _run(
        tmp_path,
        ffmpeg_without_x264_and_libass(tmp_path),
        "service",
        service,
        ADAGENT_BUS="rabbitmq",
        ADAGENT_AMQP_URL=AMQP_URL,
        ADAGENT_AMQP_NAMESPACE=fresh_namespace(),
    )
    _stopped_with(done, "encoder libx264", "filter ass")
