"""Look inside media files with PyAV (the bundled ffmpeg has no ffprobe): streams, durations, decoded audio."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class MediaInfo:
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    duration_s: float | None  # the container's: the longest stream
    video_duration_s: float | None
    audio_duration_s: float | None
    audio_sample_rate: int | None
    audio_channels: int | None


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def probe(path: Path | str) -> MediaInfo:
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = (video.average_rate or video.guessed_rate) if video is not None else None
        return MediaInfo(
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            fps=float(rate) if rate else None,
            duration_s=container.duration / av.time_base if container.duration is not None else None,
            video_duration_s=_seconds(video.duration, video.time_base) if video is not None else None,
            audio_duration_s=_seconds(audio.duration, audio.time_base) if audio is not None else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
        )


def decode_audio(path: Path | str, sample_rate: int = 48000) -> npt.NDArray[np.float32]:
    """The first audio stream, decoded, downmixed to mono and resampled: float32 in [-1, 1]."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[npt.NDArray[np.float32]] = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        stream = container.streams.audio[0]
        declared_s = _seconds(stream.duration, stream.time_base)
        for frame in container.decode(stream):
            chunks.extend(f.to_ndarray().reshape(-1).astype(np.float32) for f in resampler.resample(frame))
    # The resampler holds back a few samples of filter delay until it is flushed.
    chunks.extend(f.to_ndarray().reshape(-1).astype(np.float32) for f in resampler.resample(None))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if declared_s is not None:
        # The decoder skips AAC's leading priming but hands back the zero padding that fills the last 1024-sample
        # frame; the track's duration says where the real audio ends.
        samples = samples[: round(declared_s * sample_rate)]
    return samples


def rms_dbfs(samples: npt.NDArray[Any]) -> float:
    """RMS level relative to full scale; integer PCM is scaled by its type's range. Silence is -inf."""
    if samples.size == 0:
        return -math.inf
    x = samples.astype(np.float64)
    if np.issubdtype(samples.dtype, np.integer):
        x /= float(np.iinfo(samples.dtype).max) + 1.0
    rms = float(np.sqrt(np.mean(np.square(x))))
    return 20.0 * math.log10(rms) if rms > 0.0 else -math.inf
