"""A/V sync of a finished 6-clip ad, measured by decoding (container durations hide join drift): each clip's speech
starts in the final audio where that clip's picture starts, within 40 ms, and the audio is as long as the video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from contracts.events import ClipRendered
from services.runtime.media_probe import decode_audio, probe
from services.runtime.storage.local import LocalStorage
from tests.conftest import Server
from tests.e2e.flow import check_seed_stream, download, post_stream

RATE = 48000
SIX_LINES = (
    "Good morning, sunshine, and welcome to a brand new kind of morning routine. "
    "Your coffee is ready before you are, every single day of the week. "
    "Brewed fresh at the exact minute your alarm goes off, hot and strong. "
    "No buttons to press, no filters to change, and nothing to clean. "
    "It learns how you like it, then makes it that way every morning. "
    "Meet Brewbot. Order yours today and wake up to better coffee!"
)


def _onset(samples: npt.NDArray[np.float32], start: int, threshold: float) -> int:
    """First sample at or after `start` whose 5 ms window is louder than `threshold` (RMS)."""
    window = RATE // 200
    for i in range(start, len(samples) - window, window // 2):
        if float(np.sqrt(np.mean(samples[i : i + window] ** 2))) > threshold:
            return i
    raise AssertionError("no speech found")


async def test_six_clip_ad_keeps_sound_on_picture(server: Server, avatar_data_uri: str, tmp_path: Path) -> None:
    complete = check_seed_stream(
        await post_stream(server.url, {"script": SIX_LINES, "character_image": avatar_data_uri}, server.token)
    )
    final = await download(complete["final_video_url"], tmp_path / "ad.mp4")
    history = await server.stack.runtime.store.history(complete["job_id"])
    clips = sorted((r.event for r in history if isinstance(r.event, ClipRendered)), key=lambda c: c.index)
    assert len(clips) == 6

    info = probe(final)
    audio = decode_audio(final, RATE)
    assert info.video_duration_s is not None
    assert abs(len(audio) / RATE - info.video_duration_s) <= 0.040

    storage = server.stack.runtime.storage
    assert isinstance(storage, LocalStorage)
    peak = float(np.max(np.abs(audio)))
    boundary = 0.0
    drifts = []
    for clip in clips:
        own = decode_audio(await storage.fetch(clip.clip_ref, tmp_path), RATE)
        own_onset = _onset(own, 0, 0.05 * float(np.max(np.abs(own)))) / RATE
        start = int(max(0.0, boundary - 0.02) * RATE)
        final_onset = _onset(audio, start, 0.05 * peak) / RATE
        drifts.append(final_onset - boundary - own_onset)
        boundary += clip.duration_s
    assert abs(boundary - info.video_duration_s) <= 1 / 25
    assert max(abs(d) for d in drifts) <= 0.040, drifts
