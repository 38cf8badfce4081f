"""How the head moves: slow, small, smooth rotations, larger while speaking, with small nods where phrases start.

Each angle is band-limited noise (white noise shaped in the frequency domain to a band of 0.15-1.5 Hz, yaw slower),
scaled by how much the speaker is talking (pauses keep a third of the motion: people are never quite still), plus
a short nod (pitch down, a little roll) at each phrase onset. The result is eased in and out at both ends with a
smootherstep window, so each clip starts and ends on the photo's own pose with no velocity: clips join seamlessly.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]

# Standard deviations while speaking, degrees, before the edge window; and the hard limits.
ROLL_STD: Final = 1.5
PITCH_STD: Final = 1.0
YAW_STD: Final = 1.3
LIMITS: Final = {"roll": 3.0, "pitch": 3.0, "yaw": 4.0}
BAND_HZ: Final = (0.15, 1.5)
YAW_TOP_HZ: Final = 0.8  # turning the whole head is slower than tilting it
PAUSE_SHARE: Final = 0.35  # motion kept in pauses
NOD_DEG: Final = (0.8, 1.6)  # pitch of a phrase-onset nod
NOD_S: Final = 0.45
ONSET_PAUSE_S: Final = 0.2  # a phrase starts after at least this much silence
EDGE_S: Final = 0.6  # ease in/out at the clip's ends
MIN_ROLL_STD: Final = 0.9  # over a speaking line: below this a head reads as a still photo


def _band_noise(rng: np.random.Generator, frames: int, fps: float, top_hz: float) -> npt.NDArray[np.float64]:
    """Unit-std noise with all its energy between BAND_HZ[0] and `top_hz`, cosine-tapered at both band edges."""
    n = max(2 * frames, 64)  # padded: the noise does not wrap from the clip's end to its start
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1.0 / fps)
    low, high = BAND_HZ[0], top_hz
    gain = np.clip((freqs - low / 2) / (low / 2), 0.0, 1.0) * np.clip((high - freqs) / (0.3 * high), 0.0, 1.0)
    noise = np.fft.irfft(spectrum * gain / np.sqrt(freqs + 0.3), n)[:frames]  # pinkish: slow sways dominate
    std = float(np.std(noise))
    return noise / std if std > 0 else noise


def _smooth(values: npt.NDArray[np.float64], frames_wide: int) -> npt.NDArray[np.float64]:
    kernel = np.hanning(2 * frames_wide + 3)[1:-1]
    kernel /= kernel.sum()
    padded = np.pad(values, frames_wide, mode="edge")
    smooth: npt.NDArray[np.float64] = np.convolve(padded, kernel, mode="valid")
    return smooth


def edge_window(frames: int, fps: float) -> npt.NDArray[np.float64]:
    """0 with zero slope (and curvature) at the first and last frame, 1 in between, EDGE_S of easing each side."""
    if frames < 2:
        return np.zeros(frames)
    n = np.arange(frames, dtype=np.float64)
    ramp = max(1.0, min(EDGE_S * fps, (frames - 1) / 2))
    u = np.clip(np.minimum(n, frames - 1 - n) / ramp, 0.0, 1.0)
    window: npt.NDArray[np.float64] = u**3 * (u * (6 * u - 15) + 10)
    return window


def _onsets(speaking: npt.NDArray[np.bool_], fps: float) -> list[int]:
    """Frames where speech starts after a pause (or at the clip's start)."""
    gap = round(ONSET_PAUSE_S * fps)
    out = []
    silent_run = gap
    for n, on in enumerate(speaking):
        if on and silent_run >= gap:
            out.append(n)
        silent_run = 0 if on else silent_run + 1
    return out


def head_track(loudness: Floats, frames: int, fps: float, *, seed: int) -> tuple[Floats, Floats, Floats]:
    """(roll, pitch, yaw) in degrees on each frame, from the per-frame loudness (`mouth.openness`)."""
    if frames == 0:
        empty = np.zeros(0, np.float32)
        return empty, empty.copy(), empty.copy()
    rng = np.random.default_rng([seed, 0x4EAD])
    speaking = np.asarray(loudness[:frames]) > 0
    talk = _smooth(speaking.astype(np.float64), max(1, round(0.4 * fps)))
    envelope = PAUSE_SHARE + (1 - PAUSE_SHARE) * np.clip(talk, 0.0, 1.0)
    roll = ROLL_STD * envelope * _band_noise(rng, frames, fps, BAND_HZ[1])
    pitch = PITCH_STD * envelope * _band_noise(rng, frames, fps, BAND_HZ[1])
    yaw = YAW_STD * envelope * _band_noise(rng, frames, fps, YAW_TOP_HZ)
    # Nods: a raised-cosine dip of the head where a phrase begins, a touch of roll with it.
    times = np.arange(frames) / fps
    for n in _onsets(speaking, fps):
        centre = n / fps + NOD_S / 2
        u = np.clip((times - centre) / NOD_S, -0.5, 0.5)
        bump = 0.5 * (1 + np.cos(2 * np.pi * u))
        pitch += rng.uniform(*NOD_DEG) * bump
        roll += rng.uniform(-0.5, 0.5) * bump
    window = edge_window(frames, fps)
    out = []
    for name, angle in (("roll", roll), ("pitch", pitch), ("yaw", yaw)):
        limit = LIMITS[name]
        out.append((limit * np.tanh(angle * window / limit)).astype(np.float32))  # soft limit: no flat tops
    roll_std = float(np.std(out[0]))
    if np.any(speaking) and 0 < roll_std < MIN_ROLL_STD:
        # A short or unlucky draw: lift it to the floor, a head that talks visibly moves.
        out[0] = np.clip(out[0] * (MIN_ROLL_STD / roll_std), -LIMITS["roll"], LIMITS["roll"]).astype(np.float32)
    return out[0], out[1], out[2]
