"""What the chosen ffmpeg can do, asked once per process, and the start-up check that it can do all the pipeline asks.

A distro's ffmpeg differs from the build the project installs in version and in what it was built with (a "free"
build has no libx264, a minimal one no libass); without this check such a build fails a job at its first clip or at
the merge, long after the service said it was up. The lists below are what the code's ffmpeg arguments use: keep
them in step when an argument list changes.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from services.runtime.ffmpeg import ffmpeg_exe
from services.runtime.settings import SettingsError

MIN_VERSION: Final = (4, 4)
# libavcodec's version in ffmpeg 4.4: how a build whose version is a git description ("N-112345-g…") is judged.
_MIN_LIBAVCODEC: Final = (58, 134)
_PROBE_TIMEOUT_S: Final = 30.0

# Each with what it is for, so the message says what a missing one would break.
ENCODERS: Final = {
    "libx264": "the clips' H.264 video",
    "aac": "the ad's sound",
    "pcm_s24le": "the merged cut's sound",
    "pcm_s16le": "a cloud voice's sound",
}
FILTERS: Final = {
    "ass": "libass, for the captions",
    "alimiter": "the voice's limiter",
    "ebur128": "loudness measurement",
    **dict.fromkeys(("aformat", "anull", "anullsrc", "apad", "aresample", "atrim", "concat", "volume"), "sound"),
    **dict.fromkeys(("crop", "format", "scale", "setparams", "setsar"), "picture"),
}
MUXERS: Final = {"mp4": "the clips and the ad", "mov": "the merged cut", "null": "loudness measurement"}
DEMUXERS: Final = {
    "mov": "reading clips and cuts",
    "concat": "joining the clips",
    "rawvideo": "the local renderer's frames",
    "wav": "the local renderer's speech",
    "lavfi": "silence for a Veo clip without sound",
}


class FfmpegUnfitError(SettingsError):
    """The ffmpeg that ADAGENT_FFMPEG names (or the bundled one) cannot run the pipeline."""


@dataclass(frozen=True)
class FfmpegBuild:
    exe: str
    version: str  # as the build prints it: "5.1.9-0+deb12u1", "n9.0.2-17-g2a571b6068-20260930", "N-112345-g…"
    release: tuple[int, int] | None  # major, minor; None when `version` names no release
    libavcodec: tuple[int, int] | None
    encoders: frozenset[str]
    filters: frozenset[str]
    muxers: frozenset[str]
    demuxers: frozenset[str]
    limiter_latency: bool  # alimiter's latency option (ffmpeg 5.1 on)

    def too_old(self) -> bool:
        if self.release is not None:
            return self.release < MIN_VERSION
        return self.libavcodec is not None and self.libavcodec < _MIN_LIBAVCODEC

    def missing(self) -> list[str]:
        """What the pipeline uses and this build lacks, each with what it is for."""
        lacking: list[str] = []
        for kind, needed, present in (
            ("encoder", ENCODERS, self.encoders),
            ("filter", FILTERS, self.filters),
            ("muxer", MUXERS, self.muxers),
            ("demuxer", DEMUXERS, self.demuxers),
        ):
            lacking += [f"{kind} {name} ({why})" for name, why in needed.items() if name not in present]
        return lacking


def _run(exe: str, *args: str) -> tuple[str, str]:
    done = subprocess.run(
        [exe, *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=_PROBE_TIMEOUT_S, check=False
    )
    return done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


# One line per entry after a legend: flags, the name (aliases separated by commas), a description. The flags differ
# between versions (filters have two or three, formats two or three), so each pattern takes what any of them prints.
_ENCODER = re.compile(r"^ [VASD.][F.][S.][X.][B.][D.] +(\S+) ", re.MULTILINE)
_FILTER = re.compile(r"^ [TSC.]{2,3} +(\S+) +\S*->\S* ", re.MULTILINE)
_FORMAT = re.compile(r"^ ([D ])([E ])[d ]? +(\S+) ", re.MULTILINE)


def _names(pattern: re.Pattern[str], text: str) -> frozenset[str]:
    return frozenset(name for match in pattern.finditer(text) for name in match.group(1).split(",") if name != "=")


def _formats(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Muxers and demuxers from `-formats`: a D and an E flag, a blank where one is not."""
    muxers: set[str] = set()
    demuxers: set[str] = set()
    for match in _FORMAT.finditer(text):
        names = match.group(3).split(",")
        if match.group(1) == "D":
            demuxers.update(names)
        if match.group(2) == "E":
            muxers.update(names)
    return frozenset(muxers), frozenset(demuxers)


def _pair(match: re.Match[str] | None) -> tuple[int, int] | None:
    return (int(match.group(1)), int(match.group(2))) if match else None


@functools.cache
def probe_build(exe: str) -> FfmpegBuild:
    """Ask `exe` what it is and has: four quick listings, run side by side. Raises OSError if it cannot be run."""
    calls = {
        "encoders": ("-encoders",),  # with the banner, on stderr: the version and the libraries'
        "filters": ("-hide_banner", "-filters"),
        "formats": ("-hide_banner", "-formats"),
        "alimiter": ("-hide_banner", "-h", "filter=alimiter"),
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {key: pool.submit(_run, exe, *args) for key, args in calls.items()}
        out = {key: future.result() for key, future in futures.items()}
    banner = out["encoders"][1]
    version = re.search(r"ffmpeg version (\S+)", banner)
    muxers, demuxers = _formats(out["formats"][0])
    return FfmpegBuild(
        exe=exe,
        version=version.group(1) if version else "unknown",
        release=_pair(re.match(r"n?(\d+)\.(\d+)", version.group(1)) if version else None),
        libavcodec=_pair(re.search(r"libavcodec\s+(\d+)\.\s*(\d+)\.", banner)),
        encoders=_names(_ENCODER, out["encoders"][0]),
        filters=_names(_FILTER, out["filters"][0]),
        muxers=muxers,
        demuxers=demuxers,
        limiter_latency=re.search(r"^\s+latency\s", out["alimiter"][0], re.MULTILINE) is not None,
    )


def _remedy() -> str:
    if os.environ.get("ADAGENT_FFMPEG"):
        return (
            "unset ADAGENT_FFMPEG to use the build AdAgent installs (imageio-ffmpeg), or name a full build of "
            f"ffmpeg {MIN_VERSION[0]}.{MIN_VERSION[1]} or later in it (Debian/Ubuntu: apt-get install ffmpeg)"
        )
    return "reinstall AdAgent's dependencies (pip install imageio-ffmpeg), or name a full build in ADAGENT_FFMPEG"


def check_ffmpeg() -> FfmpegBuild:
    """The chosen ffmpeg, if it can do everything the pipeline asks of it; else FfmpegUnfitError, one line that names
    the binary, its version, what it lacks and how to fix that. Probed once per process."""
    exe = ffmpeg_exe()
    try:
        build = probe_build(exe)
    except (OSError, subprocess.SubprocessError) as exc:
        raise FfmpegUnfitError(f"ffmpeg at {exe} cannot be run ({exc}); {_remedy()}") from None
    named = f"ffmpeg at {exe} (version {build.version})"
    if build.version == "unknown" and not build.encoders:
        raise FfmpegUnfitError(
            f"{exe}, named as ffmpeg, does not answer as ffmpeg does (no version, no encoders); {_remedy()}"
        )
    if build.too_old():
        raise FfmpegUnfitError(
            f"{named} is older than {MIN_VERSION[0]}.{MIN_VERSION[1]}, which AdAgent needs; {_remedy()}"
        )
    lacking = build.missing()
    if lacking:
        raise FfmpegUnfitError(f"{named} lacks what AdAgent needs: {', '.join(lacking)}; {_remedy()}")
    return build


def limiter_latency() -> bool:
    """Whether the chosen ffmpeg's alimiter can compensate its own look-ahead (5.1 on)."""
    try:
        return probe_build(ffmpeg_exe()).limiter_latency
    except (OSError, subprocess.SubprocessError):
        return True  # the encode itself will say what is wrong with the binary
