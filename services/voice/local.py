"""Voice enhancement on this machine: loudness-normalise the cut to -14 LUFS, true peak at most -1 dBTP.

Piper's voice is peaky (about 20 dB between true peak and integrated loudness; -14 LUFS at -1 dBTP allows 13), so
plain gain cannot reach the target and ffmpeg's loudnorm falls back to its dynamic mode, which stops short. The
chain is therefore: gain, then a look-ahead limiter (alimiter, at 4x oversampling so sample peaks are true peaks),
then a small linear trim. Limiting eats loudness, so the gain in front of it is found by measuring (a secant search,
usually two or three passes), and the trim makes the last few tenths exact.

Loudness is measured with the ebur128 filter, not loudnorm's JSON: on gated speech loudnorm's integrated reading is
0.3 to 0.8 LU below ebur128's, which agrees with a direct ITU-R BS.1770-4 computation and with what delivery
platforms measure. The video stream is copied untouched.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.runtime.ffmpeg import run_ffmpeg
from services.runtime.ffmpeg_build import limiter_latency

TARGET_LUFS: Final = -14.0
MAX_TRUE_PEAK_DBTP: Final = -1.0
# Limiter ceiling, in dB at 192 kHz, so about dBTP. Below -1 to leave room for the trim, the resampling back to
# 48 kHz and AAC's own overshoot.
CEILING_DB: Final = -2.0
# How far the limited loudness may miss the target and still be fixed by a linear trim: the trim raises the peaks by
# as much, and they must stay under the true-peak limit.
MAX_TRIM_DB: Final = 0.5
MAX_SEARCH_PASSES: Final = 6
MAX_ENCODES: Final = 3
MAX_GAIN_DB: Final = 40.0
SILENCE_LUFS: Final = -69.0  # ebur128 reports -70.0 for input that never rises above its absolute gate
OUTPUT_RATE: Final = 48000
OVERSAMPLED_RATE: Final = 192000
# At 128k ffmpeg's AAC encoder overshot a limited voice by 1.6 dB in places; from 160k up it stays within 0.2 dB.
AUDIO_BITRATE: Final = "192k"

_log = logging.getLogger(__name__)

_INTEGRATED = re.compile(r"^\s*I:\s+(-?[\d.]+|-?inf) LUFS", re.MULTILINE)
_TRUE_PEAK = re.compile(r"^\s*Peak:\s+(-?[\d.]+|-?inf) dBFS", re.MULTILINE)


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float


def parse_ebur128(stderr: str) -> Loudness:
    """The summary ebur128 prints when its filter graph closes (with peak=true for the true peak)."""
    summary = stderr[stderr.rfind("Summary:") :]
    integrated = _INTEGRATED.search(summary)
    if "Summary:" not in stderr or integrated is None:
        raise ValueError("no ebur128 summary in ffmpeg's output")
    peak = _TRUE_PEAK.search(summary)
    return Loudness(float(integrated.group(1)), float(peak.group(1)) if peak is not None else math.nan)


async def measure_loudness(path: Path, chain: str = "anull") -> Loudness:
    """Integrated loudness and true peak of the first audio stream of `path`, after the filter `chain`."""
    # framelog=verbose: the ten lines a second go out at a level ffmpeg does not print, the summary still at info.
    # ("quiet" says so more plainly, but ffmpeg before 6.1 does not know that name.)
    stderr = await run_ffmpeg(
        "-i", str(path), "-map", "0:a:0", "-af", f"{chain},ebur128=peak=true:framelog=verbose", "-f", "null", "-",
    )  # fmt: skip
    return parse_ebur128(stderr)


@dataclass(frozen=True)
class Dynamics:
    """Gain, limiter, trim: the whole processing, as one ffmpeg filter chain."""

    gain_db: float
    ceiling_db: float = CEILING_DB
    trim_db: float = 0.0

    def chain(self) -> str:
        return ",".join(
            [
                f"volume={self.gain_db:.3f}dB",
                f"aresample={OVERSAMPLED_RATE}",
                # Fast attack and release: voiced speech peaks every pitch period (about 8 ms for this voice), and
                # a slower release holds the gain down through whole vowels, which costs nearly a dB of loudness
                # per dB of peak reduction. latency=1 compensates the look-ahead, keeping the voice in sync; an
                # ffmpeg before 5.1 has no such option, and there the voice comes 1 ms (the attack) late, far
                # below what an eye can tell.
                f"alimiter=limit={self.ceiling_db:.3f}dB:attack=1:release=10:level=disabled"
                + (":latency=1" if limiter_latency() else ""),
                # In double, as the limiter writes: with a conversion between the two, ffmpeg 5.1 fails to pick a
                # channel layout for the encoder ("Cannot select channel layout").
                f"volume={self.trim_db:.3f}dB:precision=double",
            ]
        )


async def _find_gain(merged: Path, gain_db: float, ceiling_db: float) -> Dynamics:
    """Search the gain into the limiter until the result is within MAX_TRIM_DB of the target; trim the rest."""
    tried: list[tuple[float, float]] = []
    gain = gain_db
    for _ in range(MAX_SEARCH_PASSES):
        loudness = (await measure_loudness(merged, Dynamics(gain, ceiling_db).chain())).integrated_lufs
        tried.append((gain, loudness))
        miss = TARGET_LUFS - loudness
        if abs(miss) <= MAX_TRIM_DB:
            break
        if len(tried) == 1:
            slope = 0.5  # typical for speech at this ceiling; the secant takes over from the second pass
        else:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            slope = (l1 - l0) / (g1 - g0) if g1 != g0 else 0.5
        # Limited loudness rises less than 1 dB per dB of gain, and ever less the harder it limits.
        gain = min(MAX_GAIN_DB, gain + miss / min(1.0, max(0.1, slope)))
    _log.debug("loudness search at ceiling %.2f dB: %s", ceiling_db, tried)
    best_gain, best_loudness = min(tried, key=lambda t: abs(TARGET_LUFS - t[1]))
    return Dynamics(best_gain, ceiling_db, TARGET_LUFS - best_loudness)


async def _write(merged: Path, out: Path, audio: list[str]) -> None:
    await run_ffmpeg(
        "-i", str(merged),
        "-map", "0:v?", "-c:v", "copy",
        "-map", "0:a:0", *audio,
        "-movflags", "+faststart",
        str(out),
    )  # fmt: skip


class LocalVoiceEnhancer:
    name = "local"

    async def enhance(self, merged: Path, out: Path, voice_id: str | None) -> float | None:
        """`voice_id` picks a voice at a cloud provider; the local enhancer keeps the voice it is given."""
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.stem}.partial.mp4")
        try:
            source = await measure_loudness(merged)
            if source.integrated_lufs <= SILENCE_LUFS:
                # No speech to measure: gain would only amplify noise, so the sound passes through at its level,
                # encoded as the ad's sound always is (the merged cut's PCM has no place in an MP4).
                await _write(merged, partial, ["-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(OUTPUT_RATE)])
                os.replace(partial, out)
                return None
            result = await self._normalise(merged, partial, source)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, out)
        return result.integrated_lufs

    async def _normalise(self, merged: Path, out: Path, source: Loudness) -> Loudness:
        dynamics = Dynamics(TARGET_LUFS - source.integrated_lufs)  # the right gain if nothing needs limiting
        for _ in range(MAX_ENCODES):
            dynamics = await _find_gain(merged, dynamics.gain_db, dynamics.ceiling_db)
            await _write(
                merged,
                out,
                [
                    "-af", f"{dynamics.chain()},aresample={OUTPUT_RATE}",
                    "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(OUTPUT_RATE),
                ],
            )  # fmt: skip
            # Checked on the encoded file, because the encoder can still add peaks the limiter never saw.
            result = await measure_loudness(out)
            if result.true_peak_dbtp <= MAX_TRUE_PEAK_DBTP:
                break
            lower = dynamics.ceiling_db - (result.true_peak_dbtp - MAX_TRUE_PEAK_DBTP) - 0.3
            dynamics = Dynamics(dynamics.gain_db, lower)
        _log.info(
            "voice normalised: %.1f LUFS / %.1f dBTP -> %.1f LUFS / %.1f dBTP",
            source.integrated_lufs,
            source.true_peak_dbtp,
            result.integrated_lufs,
            result.true_peak_dbtp,
        )
        return result
