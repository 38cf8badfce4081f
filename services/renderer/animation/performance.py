"""A clip's whole performance: the mouth from the phonemes and the voice's loudness, blinks, head motion.

`perform` is a pure function of the speech, the clip's length and a seed; `seed_for(line)` makes the seed from the
clip's line, so rendering the same line again gives the same performance. With `liveness=False` only the jaw moves,
with the loudness (the renderer before issue 12): the switch tests use to show the liveness bench fails without it.
"""

from __future__ import annotations

import zlib

import numpy as np

from services.renderer import mouth
from services.renderer.animation.blinks import blink_track
from services.renderer.animation.head_motion import head_track
from services.renderer.animation.phoneme_estimate import estimate_phonemes
from services.renderer.animation.pose import Floats, PoseTrack
from services.renderer.animation.visemes import mouth_track
from services.renderer.speech import Speech


def seed_for(text: str) -> int:
    """A stable seed for a line of text (the same in every process, unlike `hash`)."""
    return zlib.crc32(text.encode("utf-8"))


def loudness(speech: Speech, frames: int, fps: int) -> Floats:
    """The voice's per-frame loudness mapped to mouth openness, 0..1, exactly 0 in silence."""
    samples = speech.samples.astype(np.float32) / 32768.0
    return mouth.openness(samples, speech.sample_rate, frames, fps)


def pauses(loud: Floats, fps: int) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch where the voice is silent."""
    silent = np.concatenate(([False], np.asarray(loud) <= 0, [False]))
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    return [(float(a) / fps, float(b) / fps) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def perform(speech: Speech, frames: int, fps: int, *, seed: int, liveness: bool = True) -> PoseTrack:
    """The face on each of `frames` frames at `fps` (the clip may run past the speech: that tail is silence)."""
    loud = loudness(speech, frames, fps)
    if not liveness:
        return PoseTrack.build(frames, jaw=loud)
    phonemes = speech.phonemes or estimate_phonemes(speech.words)
    jaw, wide, rounded, press, tongue = mouth_track(phonemes, frames, fps, loud)
    left, right = blink_track(frames, fps, seed=seed, pauses=pauses(loud, fps))
    roll, pitch, yaw = head_track(loud, frames, fps, seed=seed)
    return PoseTrack.build(
        frames,
        jaw=jaw,
        wide=wide,
        round=rounded,
        press=press,
        tongue=tongue,
        blink_left=left,
        blink_right=right,
        roll=roll,
        pitch=pitch,
        yaw=yaw,
    )
