"""Finding speech in synthesized sound, and spreading a line's words over it."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import numpy.typing as npt
import pytest

from services.renderer.speech_span import MIN_GAP_S, SpeechSpan, find_speech
from services.renderer.word_estimate import estimate_words, pause_units, spoken_units

RATE = 16000
EDGE_S = 0.02  # a 10 ms analysis hop, and half a 20 ms window


def sound(seconds: float, *parts: tuple[float, float, float]) -> npt.NDArray[np.float32]:
    """`seconds` of silence with a 180 Hz tone at each (start, end, amplitude)."""
    t = np.arange(round(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for start, end, amplitude in parts:
        inside = (t >= start) & (t < end)
        out[inside] = amplitude * np.sin(2 * np.pi * 180 * t[inside])
    return out.astype(np.float32)


def test_silence_and_near_silence_are_no_speech() -> None:
    assert find_speech(sound(2.0), RATE) is None
    noise = np.random.default_rng(1).normal(0, 10 ** (-70 / 20), 2 * RATE).astype(np.float32)
    assert find_speech(noise, RATE) is None  # under the floor: encoder noise, an empty room


def test_a_short_dip_stays_inside_one_stretch_and_a_pause_splits_it() -> None:
    dip = MIN_GAP_S / 3  # a stop consonant's closure
    pause = MIN_GAP_S * 2  # a breath at a comma
    span = find_speech(sound(4.0, (0.5, 1.2, 0.5), (1.2 + dip, 2.0, 0.5), (2.0 + pause, 3.1, 0.4)), RATE)
    assert span is not None
    assert len(span.stretches) == 2
    assert span.start == pytest.approx(0.5, abs=EDGE_S)
    assert span.end == pytest.approx(3.1, abs=EDGE_S)
    [(paused, resumed)] = span.pauses
    assert paused == pytest.approx(2.0, abs=EDGE_S) and resumed == pytest.approx(2.0 + pause, abs=EDGE_S)


def test_a_soft_tail_belongs_to_its_word_but_a_soft_sound_alone_is_not_speech() -> None:
    # -30 dB under the loud part: above OFF_DB, below ON_DB
    soft = 0.5 * 10 ** (-30 / 20)
    span = find_speech(sound(3.0, (0.4, 1.0, 0.5), (1.0, 1.3, soft), (2.2, 2.6, soft)), RATE)
    assert span is not None
    assert [t for stretch in span.stretches for t in stretch] == pytest.approx([0.4, 1.3], abs=EDGE_S)


def test_a_click_is_not_speech() -> None:
    span = find_speech(sound(3.0, (0.4, 1.5, 0.5), (2.5, 2.52, 0.9)), RATE)
    assert span is not None and span.end == pytest.approx(1.5, abs=EDGE_S)


def test_the_threshold_follows_the_speech_level() -> None:
    quiet = find_speech(sound(2.0, (0.3, 1.4, 0.02)), RATE)  # -37 dBFS: quiet, but speech
    assert quiet is not None
    assert [t for stretch in quiet.stretches for t in stretch] == pytest.approx([0.3, 1.4], abs=EDGE_S)


# --- estimated word timings -------------------------------------------------------------------------------------


def test_spoken_lengths_follow_syllables_and_punctuation() -> None:
    assert spoken_units("a") < spoken_units("glow") < spoken_units("overnight") < spoken_units("unbelievable")
    assert spoken_units("while") < spoken_units("people")  # silent "e", spoken "le"
    assert spoken_units("20%") > spoken_units("twenty")
    assert spoken_units("\u2014") == 0
    assert pause_units("sleep.") > pause_units("Glow,") > pause_units("serum") == 0


def check(words: list[str], timed: list[tuple[str, float, float]], span: SpeechSpan) -> None:
    assert [w for w, _, _ in timed] == words
    assert all(start <= end for _, start, end in timed)
    assert all(a[2] <= b[1] for a, b in pairwise(timed))
    assert timed[0][1] == pytest.approx(span.start) and timed[-1][2] == pytest.approx(span.end)


def test_words_fill_the_speech_and_punctuation_lands_on_its_pause() -> None:
    line = "Wake up radiant, and ready for anything. Order today."
    span = SpeechSpan(((0.3, 1.4), (1.7, 3.2), (3.6, 4.5)))
    timed = [(w.word, w.start, w.end) for w in estimate_words(line, span)]
    check(line.split(), timed, span)
    by_word = {w: (s, e) for w, s, e in timed}
    assert by_word["radiant,"][1] == 1.4 and by_word["and"][0] == 1.7
    assert by_word["anything."][1] == 3.2 and by_word["Order"][0] == 3.6


def test_a_breath_without_punctuation_is_left_out_of_every_word() -> None:
    line = "Meet Glow the serum that works while you sleep."
    span = SpeechSpan(((0.3, 1.9), (2.3, 4.0)))  # Veo paused where the text has no comma
    words = estimate_words(line, span)
    check(line.split(), [(w.word, w.start, w.end) for w in words], span)
    assert not any(w.start < 2.3 and w.end > 1.9 for w in words)  # no word spans the silence
    assert any(w.end == 1.9 for w in words) and any(w.start == 2.3 for w in words)  # it falls between two


def test_a_comma_with_no_silence_near_it_keeps_its_guess() -> None:
    line = "Bright, light, and warm every single morning of the week."
    span = SpeechSpan(((0.2, 3.0), (3.8, 4.2)))  # one silence, far from either comma's guess
    words = estimate_words(line, span)
    check(line.split(), [(w.word, w.start, w.end) for w in words], span)
    assert words[0].end < 1.0 and words[1].end < 1.5  # the commas were not dragged to the late silence


def test_unspoken_punctuation_takes_no_time_and_the_estimate_is_deterministic() -> None:
    line = "Glow \u2014 the serum."
    span = SpeechSpan(((0.5, 2.0),))
    first = estimate_words(line, span)
    assert first == estimate_words(line, span)
    dash = first[1]
    assert dash.start == dash.end == first[0].end
