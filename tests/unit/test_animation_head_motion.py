"""Head motion: size while speaking and in pauses, smoothness, still edges, limits, determinism."""

from __future__ import annotations

import numpy as np

from services.renderer.animation.head_motion import LIMITS, head_track

FPS = 25


def speaking(seconds: float, *silent: tuple[float, float]) -> np.ndarray:
    frames = round(seconds * FPS)
    loud = np.full(frames, 0.5, np.float32)
    loud[:3] = loud[-3:] = 0.0
    for a, b in silent:
        loud[round(a * FPS) : round(b * FPS)] = 0.0
    return loud


def test_a_speaking_line_sways_at_least_0_9_degrees() -> None:
    loud = speaking(5.0)
    stds = [float(np.std(head_track(loud, len(loud), FPS, seed=s)[0])) for s in range(200)]
    assert min(stds) >= 0.9
    assert np.median(stds) < 2.0  # a sway, not a wobble


def test_the_head_moves_more_while_speaking_than_in_pauses() -> None:
    loud = speaking(9.0, (3.0, 6.0))
    talk, pause = [], []
    for s in range(200):
        roll, pitch, _ = head_track(loud, len(loud), FPS, seed=s)
        talk.append(np.std(roll[25:70]) + np.std(pitch[25:70]))
        pause.append(np.std(roll[90:135]) + np.std(pitch[90:135]))
    assert np.mean(talk) > 1.5 * np.mean(pause)
    assert np.mean(pause) > 0.1  # never quite still


def test_pose_and_velocity_are_zero_at_both_edges() -> None:
    loud = speaking(4.0)
    for s in range(50):
        for angle in head_track(loud, len(loud), FPS, seed=s):
            assert angle[0] == 0.0 and angle[-1] == 0.0
            assert abs(angle[1] - angle[0]) < 0.02 and abs(angle[-1] - angle[-2]) < 0.02


def test_motion_is_slow_and_within_limits() -> None:
    loud = speaking(8.0, (3.0, 3.5))
    high = []
    for s in range(100):
        for name, angle in zip(("roll", "pitch", "yaw"), head_track(loud, len(loud), FPS, seed=s), strict=True):
            assert np.max(np.abs(angle)) <= LIMITS[name]
            power = np.abs(np.fft.rfft(angle - np.mean(angle))) ** 2
            freqs = np.fft.rfftfreq(len(angle), 1 / FPS)
            high.append(power[freqs > 2.0].sum() / power.sum())
    assert np.median(high) < 0.02


def test_the_same_seed_gives_the_same_motion() -> None:
    loud = speaking(4.0)
    a = head_track(loud, len(loud), FPS, seed=5)
    b = head_track(loud, len(loud), FPS, seed=5)
    c = head_track(loud, len(loud), FPS, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
