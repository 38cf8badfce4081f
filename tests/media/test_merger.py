from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.runtime.media_probe import decode_audio, probe
from tests.media.conftest import Rendered
from tests.media.media_checks import coded_slices, top_level_boxes, video_codec_params, video_packets

RATE = 48000


def test_duration_is_the_sum_of_the_clips(merged: tuple[Path, float], ad_clips: list[Rendered]) -> None:
    path, duration = merged
    total = sum(clip.duration_s for clip in ad_clips)
    info = probe(path)
    assert duration == pytest.approx(total, abs=1 / 25)
    assert info.video_duration_s == pytest.approx(total, abs=1 / 25)
    assert info.duration_s == pytest.approx(total, abs=1 / 25)
    assert (info.video_codec, info.audio_codec, info.audio_sample_rate) == (
        "h264",
        "pcm_s24le",
        RATE,
    )  # lossless intermediate: the voice step encodes AAC once
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")


def test_video_is_copied_not_reencoded(merged: tuple[Path, float], ad_clips: list[Rendered]) -> None:
    path, _ = merged
    sources = [packet for clip in ad_clips for packet in video_packets(clip.path)]
    joined = video_packets(path)
    assert len(joined) == len(sources)
    # The muxer may repeat SPS/PPS in front of each clip's keyframe; the coded pictures are the clips' own bytes.
    assert all(coded_slices(a) == coded_slices(b) for a, b in zip(sources, joined, strict=True))
    assert {video_codec_params(clip.path) for clip in ad_clips} == {video_codec_params(path)}


def test_audio_is_as_long_as_the_video(merged: tuple[Path, float]) -> None:
    path, duration = merged
    assert len(decode_audio(path)) / RATE == pytest.approx(duration, abs=0.040)


def test_every_line_starts_where_its_clip_starts(merged: tuple[Path, float], ad_clips: list[Rendered]) -> None:
    """No drift at the joins: each clip's sound sits in the cut at the sample where its picture starts."""
    joined = decode_audio(merged[0])
    start = 0
    for clip in ad_clips:
        own = decode_audio(clip.path)
        segment = joined[start : start + len(own)]
        spectrum = np.fft.rfft(segment, 2 * len(own)) * np.conj(np.fft.rfft(own, 2 * len(own)))
        correlation = np.fft.irfft(spectrum)
        lag = int(np.argmax(correlation))
        lag = lag - 2 * len(own) if lag > len(own) else lag
        assert abs(lag) <= RATE // 1000, f"{clip.path.name} is {lag} samples off"
        start += round(clip.duration_s * RATE)
