"""Blinks: rate, irregularity, length, edges, pauses, determinism, over many synthetic clips."""

from __future__ import annotations

import numpy as np

from services.renderer.animation.blinks import EDGE_S, REFRACTORY_S, blink_track, blinks

FPS = 25


def clips(count: int = 400) -> list[tuple[float, int]]:
    """(duration, seed) of typical ad lines, 3-9 s."""
    rng = np.random.default_rng(7)
    return [(float(rng.uniform(3.0, 9.0)), seed) for seed in range(count)]


def test_people_blink_8_to_25_times_a_minute_at_irregular_intervals() -> None:
    total_s, count, intervals = 0.0, 0, []
    for duration, seed in clips():
        events = blinks(duration, FPS, seed=seed)
        total_s += duration
        count += len(events)
        intervals += list(np.diff([b.peak for b in events]))
    rate = count / total_s * 60
    assert 8 <= rate <= 25, rate
    gaps = np.array(intervals)
    gaps = gaps[gaps > REFRACTORY_S]  # irregular even without the double blinks' short gaps
    assert np.std(gaps) / np.mean(gaps) >= 0.3


def test_each_blink_lasts_100_to_300_ms_and_shuts_the_eye() -> None:
    for duration, seed in clips(100):
        events = blinks(duration, FPS, seed=seed)
        left, right = blink_track(round(duration * FPS), FPS, seed=seed)
        assert all(0.1 <= b.duration <= 0.3 for b in events)
        # Every blink shows one frame fully shut, and it is seen for 2-8 frames.
        shut = np.flatnonzero(np.diff(np.concatenate(([0], (left > 0).astype(int), [0]))))
        runs = shut[1::2] - shut[::2]
        assert len(runs) <= len(events)  # a double blink may touch
        assert all(2 <= r <= 8 for r in runs if r < 9)
        assert np.sum(left >= 0.99) >= len(events)
        np.testing.assert_array_equal(left, right)


def test_no_blink_near_a_clips_start_or_end() -> None:
    for duration, seed in clips():
        frames = round(duration * FPS)
        left, _ = blink_track(frames, FPS, seed=seed)
        edge = round(EDGE_S * FPS)
        assert not np.any(left[:edge]) and not np.any(left[frames - edge :])


def test_a_short_clip_may_have_none() -> None:
    assert all(len(blinks(0.8, FPS, seed=s)) == 0 for s in range(50))
    counts = [len(blinks(1.8, FPS, seed=s)) for s in range(200)]
    assert max(counts) <= 2


def test_blinks_gather_in_pauses() -> None:
    pause = (3.0, 3.6)
    inside = inside_without = 0
    for seed in range(600):
        with_pause = blinks(6.0, FPS, seed=seed, pauses=[pause])
        without = blinks(6.0, FPS, seed=seed)
        inside += sum(pause[0] <= b.peak <= pause[1] for b in with_pause)
        inside_without += sum(pause[0] <= b.peak <= pause[1] for b in without)
    assert inside > 1.5 * inside_without


def test_the_same_seed_gives_the_same_blinks() -> None:
    a = blink_track(200, FPS, seed=42, pauses=[(2.0, 2.5)])
    b = blink_track(200, FPS, seed=42, pauses=[(2.0, 2.5)])
    np.testing.assert_array_equal(a[0], b[0])
    c = blink_track(200, FPS, seed=43, pauses=[(2.0, 2.5)])
    assert not np.array_equal(a[0], c[0])
