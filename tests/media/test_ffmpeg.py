from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from services.runtime.ffmpeg import FfmpegError, ffmpeg_exe, run_ffmpeg


def _running_with(marker: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                return True
        except OSError:
            continue  # the process ended while we looked
    return False


def test_ffmpeg_binary_exists() -> None:
    assert Path(ffmpeg_exe()).is_file()


async def test_failure_carries_the_end_of_stderr(tmp_path: Path) -> None:
    with pytest.raises(FfmpegError) as caught:
        await run_ffmpeg("-i", str(tmp_path / "missing.mp4"), "-f", "null", "-")
    assert caught.value.returncode != 0
    assert 0 < len(caught.value.stderr_tail) <= 20
    assert "missing.mp4" in str(caught.value)


async def test_cancelling_kills_the_process() -> None:
    marker = f"adagent-test-{uuid.uuid4()}"
    # -re paces the endless input in real time, so it runs until killed without spinning a core.
    task = asyncio.create_task(
        run_ffmpeg("-re", "-f", "lavfi", "-i", "sine=r=8000", "-metadata", f"comment={marker}", "-f", "null", "-")
    )
    await asyncio.sleep(0.5)
    assert _running_with(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _running_with(marker)
