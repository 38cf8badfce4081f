"""bench/liveness_metrics.py gives the right figures on synthetic landmark series and audio with known answers."""

# ruff: noqa: RUF001, RUF003  (IPA letters, as espeak-ng writes them, look like Latin ones)

from __future__ import annotations

import numpy as np
import pytest

from bench import liveness_metrics as m

FPS = 25.0
RATE = 16_000


def _face(frames: int) -> np.ndarray:
    """A neutral face's landmarks repeated over `frames`: eye corners 100 px apart, a 50 px mouth."""
    p = np.zeros((frames, 478, 2))
    p[:, m.EYE_OUTER_LEFT] = (100, 100)
    p[:, m.EYE_OUTER_RIGHT] = (200, 100)
    for (c1, u1, u2, c2, l2, l1), x0 in ((m.LEFT_EYE, 100), (m.RIGHT_EYE, 170)):
        p[:, c1] = (x0, 100)
        p[:, c2] = (x0 + 30, 100)
        p[:, u1] = (x0 + 10, 94)
        p[:, u2] = (x0 + 20, 94)
        p[:, l1] = (x0 + 10, 106)
        p[:, l2] = (x0 + 20, 106)
    p[:, m.EYE_OUTER_RIGHT] = (200, 100)  # the right eye's outer corner is its c2 above
    p[:, m.MOUTH_LEFT] = (125, 200)
    p[:, m.MOUTH_RIGHT] = (175, 200)
    p[:, m.LIP_TOP] = (150, 192)
    p[:, m.LIP_BOTTOM] = (150, 208)
    p[:, m.INNER_TOP] = (150, 200)
    p[:, m.INNER_BOTTOM] = (150, 200)
    return p


def test_eye_aspect_ratio_of_the_synthetic_eye() -> None:
    assert m.eye_aspect_ratio(_face(1))[0] == pytest.approx(12 / 30)


def test_blinks_are_found_at_the_frames_they_were_put() -> None:
    frames = 60 * 25
    rng = np.random.default_rng(1)
    ear = 0.3 + rng.normal(0, 0.004, frames)  # tracker jitter
    at = [40, 130, 190, 400, 470, 800, 1000, 1010 + 100, 1400]
    for f in at:
        ear[f - 2 : f + 3] = [0.22, 0.12, 0.06, 0.14, 0.24]
    assert m.blink_frames(ear, FPS) == at
    assert m.blink_frames(0.3 + rng.normal(0, 0.004, frames), FPS) == []  # a still photo: none


def test_a_long_closure_is_not_a_blink_and_close_dips_are_one() -> None:
    ear = np.full(500, 0.3)
    ear[100:130] = 0.05  # 1.2 s eyes shut
    ear[300:302] = 0.1
    ear[303:305] = 0.1  # a 1-frame bounce inside one blink
    assert m.blink_frames(ear, FPS) == [300]


def test_interval_irregularity() -> None:
    assert m.interval_irregularity([0, 100, 200, 300]) == pytest.approx(0.0)
    assert m.interval_irregularity([0, 50, 200, 250]) == pytest.approx(np.std([50, 150, 50]) / np.mean([50, 150, 50]))
    assert np.isnan(m.interval_irregularity([0, 100]))


def test_roll_of_a_tilted_face_and_its_spread() -> None:
    frames = 250
    angle = 2.0 * np.sin(np.arange(frames) / 10.0)  # degrees
    p = _face(frames)
    rad = np.radians(angle)
    p[:, m.EYE_OUTER_RIGHT] = np.stack([100 + 100 * np.cos(rad), 100 + 100 * np.sin(rad)], axis=1)
    roll = m.roll_degrees(p)
    np.testing.assert_allclose(roll, angle, atol=1e-9)
    assert m.nanstd(roll) == pytest.approx(np.std(angle))


def test_mouth_shapes_in_face_units() -> None:
    p = _face(2)
    p[1] *= 2.0  # the same face, pushed in twice as close
    p[:, m.INNER_BOTTOM, 1] += np.array([10.0, 20.0])  # open by a fifth of the mouth's width
    shapes = m.mouth_shapes(p)
    np.testing.assert_allclose(shapes.width, [0.5, 0.5])
    np.testing.assert_allclose(shapes.opening, [0.2, 0.2])
    np.testing.assert_allclose(shapes.aspect, [50 / 16, 50 / 16])
    assert m.coefficient_of_variation(shapes.width) == pytest.approx(0.0)


def _speech(seconds: float, talk: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """A 4 Hz syllable-modulated tone during the `talk` windows, silence elsewhere; its envelope as well."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.zeros_like(t)
    for a, b in talk:
        inside = (t >= a) & (t < b)
        envelope[inside] = 0.3 * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t[inside]))
    return envelope * np.sin(2 * np.pi * 180 * t), envelope


def test_speaking_and_silent_frames_from_the_audio() -> None:
    samples, _ = _speech(6.0, [(1.0, 3.0), (4.0, 5.0)])
    frames = int(6 * FPS)
    rms = m.frame_loudness(samples, RATE, FPS, frames)
    speaking = m.speaking_mask(rms, FPS)
    t = (np.arange(frames) + 0.5) / FPS
    truth = ((t > 1.0) & (t < 3.0)) | ((t > 4.0) & (t < 5.0))
    assert np.mean(speaking == truth) > 0.97
    silent = m.silent_mask(speaking, FPS)
    assert not (silent & truth).any()
    assert silent[: int(0.8 * FPS)].all() and silent[int(3.2 * FPS) : int(3.8 * FPS)].all()


def test_correlation_with_the_loudness_per_speaking_second() -> None:
    samples, _ = _speech(6.0, [(0.0, 6.0)])
    frames = int(6 * FPS)
    rms = m.frame_loudness(samples, RATE, FPS, frames)
    speaking = np.ones(frames, dtype=bool)
    follows = rms / rms.max() * 0.3  # a mouth opening with the voice
    assert m.per_second_correlation(follows, rms, speaking, FPS) > 0.95
    rng = np.random.default_rng(3)
    assert abs(m.per_second_correlation(rng.random(frames), rms, speaking, FPS)) < 0.4
    assert np.isnan(m.per_second_correlation(follows, rms, np.zeros(frames, dtype=bool), FPS))


def test_closed_share_counts_silent_frames_only() -> None:
    opening = np.array([0.0, 0.02, 0.3, 0.5, 0.01, np.nan] * 5)
    silent = np.array([True, True, True, False, True, True] * 5)
    assert m.closed_share(opening, silent) == pytest.approx(3 / 4)


def test_a_mouth_at_its_rest_is_closed_even_with_the_teeth_showing() -> None:
    """A photo smiling with parted lips rests at 0.16 of the width apart: at rest is closed, opened beyond is not."""
    rng = np.random.default_rng(2)
    opening = np.concatenate([0.16 + rng.normal(0, 0.004, 100), 0.16 + rng.uniform(0.05, 0.2, 100)])
    silent = np.arange(200) < 100
    assert m.closed_share(opening, silent) == pytest.approx(1.0)
    assert m.closed_share(opening, ~silent) == pytest.approx(0.0)


def test_viseme_classes_from_phonemes() -> None:
    # "moo, bee, way" in espeak's IPA, one phoneme per code point as piper speaks; "aɪ"'s glide is no "e/i".
    phones = [m.Phone(p, i * 0.1, (i + 1) * 0.1) for i, p in enumerate("muː biː weɪ aɪ")]
    frames = m.class_frames(phones, FPS, 1000)
    mid = [int((i + 0.5) * 0.1 * FPS) for i in range(14)]  # m u ː _ b i ː _ w e ɪ _ a ɪ
    assert frames["closure"] == [mid[0], mid[4]]
    assert frames["round"] == [mid[1], mid[8]]
    assert frames["spread"] == [mid[5], mid[9]]


def test_closure_share_allows_a_frame_of_slack() -> None:
    opening = np.array([0.3, 0.3, 0.02, 0.3, 0.3, 0.3, 0.3, 0.3] * 3)
    assert m.closure_share(opening, [1, 3]) == pytest.approx(1.0)
    assert m.closure_share(opening, [1, 6]) == pytest.approx(0.5)


def test_jump_ratio() -> None:
    d = np.full(100, 2.0)
    d[[10, 30, 50, 70, 90]] = 40.0
    assert m.jump_ratio(d) == pytest.approx(20.0)
    assert m.jump_ratio(np.full(100, 2.0)) == pytest.approx(1.0)


def test_a_sentence_is_located_in_a_longer_recording() -> None:
    rng = np.random.default_rng(5)
    sentence = rng.normal(0, 0.1, RATE) * np.sin(np.linspace(0, 9 * np.pi, RATE)) ** 2
    other = rng.normal(0, 0.1, RATE // 2) * np.sin(np.linspace(0, 4 * np.pi, RATE // 2)) ** 2
    gap = np.zeros(int(0.37 * RATE))
    whole = np.concatenate([gap, other, gap, 0.5 * sentence + rng.normal(0, 0.002, RATE), gap])
    found = m.locate([m.band_energies(other, RATE), m.band_energies(sentence, RATE)], m.band_energies(whole, RATE))
    assert [start for start, _ in found] == [37, 37 + 50 + 37]
    assert all(score > 0.8 for _, score in found)
