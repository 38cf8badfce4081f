"""Run the ffmpeg binary as an asyncio subprocess, with errors that say what ffmpeg said."""

from __future__ import annotations

import asyncio
import functools
import os

import imageio_ffmpeg

_TAIL_LINES = 20


@functools.cache
def ffmpeg_exe() -> str:
    """The build the project installs (imageio-ffmpeg's), unless ADAGENT_FFMPEG names another. Not whatever `ffmpeg`
    is first on PATH: a distro's build differs in version and codecs, and the user never chose it for us."""
    return os.environ.get("ADAGENT_FFMPEG") or imageio_ffmpeg.get_ffmpeg_exe()


class FfmpegError(Exception):
    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode = returncode
        # The cause is nearly always in the last lines; the banner and progress above them are noise.
        self.stderr_tail = stderr.strip().splitlines()[-_TAIL_LINES:]
        super().__init__(f"ffmpeg exited with {returncode}:\n" + "\n".join(self.stderr_tail))


async def run_ffmpeg(*args: str) -> str:
    """Run ffmpeg with `args`; return its stderr (where filters such as loudnorm and ebur128 report)."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",  # ffmpeg otherwise reads the terminal for keystrokes and can stall in the background
        "-y",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await proc.communicate()
    except BaseException:
        # A cancelled job must not leave an encoder burning CPU for minutes.
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise
    stderr = err.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise FfmpegError(proc.returncode if proc.returncode is not None else -1, stderr)
    return stderr
