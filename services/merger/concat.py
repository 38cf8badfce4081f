"""Join rendered clips into one cut: video copied bit for bit, audio rebuilt as one sample-exact track.

Why not `-c copy` for the audio too: every AAC clip starts with encoder priming and ends on a padded 1024-sample
frame, so copying the packets back to back shifts the sound a few milliseconds later at every join, and over a
dozen clips the lips visibly trail the voice. Decoding each clip, cutting or padding it to exactly its video's
length, and encoding the whole track once puts every line where its picture is.

The merged cut is an intermediate: its audio is lossless, so the voice step, which re-encodes the audio anyway, is the
only lossy encode after the clips. It is 24-bit PCM in a QuickTime (.mov) file: no encoding time at all, and written
alike by every ffmpeg from 4.4 on. FLAC in MP4, used before, is refused without `-strict experimental` by older
builds (Debian 12's 5.1 among them), and the MP4 muxer of those takes neither PCM nor (4.2) ALAC; MOV has carried PCM
for ever, keeps per-stream durations as MP4 does, and is read by the same demuxer.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Final

from services.runtime.ffmpeg import run_ffmpeg
from services.runtime.media_probe import MediaInfo, probe

AUDIO_RATE: Final = 48000
SUFFIX: Final = ".mov"
CONTENT_TYPE: Final = "video/quicktime"
# 24 bits: the clips' AAC decodes to float, and 16 would add quantisation noise the voice step's gain could lift.
_AUDIO_CODEC: Final = ("-c:a", "pcm_s24le")


def _video_seconds(clip: Path, info: MediaInfo) -> float:
    seconds = info.video_duration_s or info.duration_s
    if info.video_codec is None or not seconds:
        raise ValueError(f"clip has no video stream with a duration: {clip}")
    return seconds


def _concat_list(clips: list[Path], seconds: list[float]) -> str:
    # `inpoint 0`: otherwise the demuxer starts each file at its earliest timestamp over all streams, which is the
    # AAC priming at -21 ms, and the copied video comes out shifted by it.
    # `duration`: the next clip then starts where this clip's video ends, not where its longest stream ends, so the
    # video has neither gaps nor overlaps.
    lines = ["ffconcat version 1.0"]
    for clip, duration in zip(clips, seconds, strict=True):
        quoted = str(clip.resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", "inpoint 0", f"duration {duration:.6f}"]
    return "\n".join(lines) + "\n"


def _audio_graph(infos: list[MediaInfo], seconds: list[float], layout: str) -> str:
    parts: list[str] = []
    for i, (info, duration) in enumerate(zip(infos, seconds, strict=True), start=1):
        end_sample = round(duration * AUDIO_RATE)
        if info.audio_codec is None:
            source = f"anullsrc=r={AUDIO_RATE}:cl={layout}"
        else:
            # first_pts=0 pads or trims the head, should a clip's audio not start with its video.
            source = f"[{i}:a:0]aresample={AUDIO_RATE}:first_pts=0,aformat=sample_fmts=fltp:channel_layouts={layout}"
        parts.append(f"{source},apad,atrim=end_sample={end_sample}[a{i}]")
    joined = "".join(f"[a{i}]" for i in range(1, len(infos) + 1))
    parts.append(f"{joined}concat=n={len(infos)}:v=0:a=1[a]")
    return ";".join(parts)


async def concat_clips(clips: list[Path], out: Path) -> float:
    """Write the clips, in order, as one QuickTime file (see SUFFIX) at `out`; return its duration in seconds."""
    if not clips:
        raise ValueError("nothing to concatenate")
    infos = await asyncio.to_thread(lambda: [probe(clip) for clip in clips])
    seconds = [_video_seconds(clip, info) for clip, info in zip(clips, infos, strict=True)]
    # Mono voice stays mono; one stereo clip makes the whole track stereo rather than fold it down.
    layout = "stereo" if any((info.audio_channels or 0) >= 2 for info in infos) else "mono"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.partial{SUFFIX}")
    with tempfile.TemporaryDirectory(prefix="adagent-merge-") as tmp:
        listing = Path(tmp) / "clips.ffconcat"
        listing.write_text(_concat_list(clips, seconds), encoding="utf-8")
        if all(info.audio_codec is not None for info in infos):
            # One input: the concat demuxer gives the audio too, each clip's packets placed at its video's start.
            # Packets are whole AAC frames (~21 ms), so at each join a little is missing or overlapping; aresample
            # with async pads or drops samples to the timestamps, which puts every line back on its picture, and
            # apad + atrim make the track exactly as long as the video.
            total = round(sum(seconds) * AUDIO_RATE)
            audio_in: list[str] = []
            audio_map = [
                "-map", "0:a:0", "-af",
                f"aresample={AUDIO_RATE}:async=1:min_hard_comp=0.0001:first_pts=0,"
                f"aformat=channel_layouts={layout},apad,atrim=end_sample={total}",
            ]  # fmt: skip
        else:
            # A clip without sound: each clip decoded on its own, silence made for the silent one.
            audio_in = [a for clip in clips for a in ("-probesize", "65536", "-analyzeduration", "0", "-i", str(clip))]
            audio_map = ["-filter_complex", _audio_graph(infos, seconds, layout), "-map", "[a]"]
        try:
            await run_ffmpeg(
                "-f", "concat", "-safe", "0", "-i", str(listing),
                *audio_in,
                "-map", "0:v:0", "-c:v", "copy",
                *audio_map, *_AUDIO_CODEC, "-ar", str(AUDIO_RATE),
                "-movflags", "+faststart",
                "-f", "mov", str(partial),
            )  # fmt: skip
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, out)
    return sum(seconds)  # the video is copied whole, so its length is the sum of the clips' video lengths
