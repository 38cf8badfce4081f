"""Phonemes estimated from word timings (a voice that gives none)."""

# ruff: noqa: RUF001  (IPA letters look like Latin ones)

from __future__ import annotations

import itertools

from contracts.events import WordTiming
from services.renderer.animation.phoneme_estimate import estimate_phonemes, letters_to_phonemes
from services.renderer.animation.visemes import viseme


def test_spelling_gives_the_lip_shapes_that_matter() -> None:
    assert [viseme(p) for p in letters_to_phonemes("moon")] == ["A", "F", "B"]
    assert [viseme(p) for p in letters_to_phonemes("sleep.")] == ["B", "H", "C", "A"]
    assert letters_to_phonemes("while") == ["w", "a", "ɪ", "l"]
    assert letters_to_phonemes("Glow,") == ["ɡ", "l", "o", "ʊ"]
    assert letters_to_phonemes("—") == []
    assert letters_to_phonemes("$19.99")  # digits are said


def test_each_words_sounds_fill_its_time_in_order() -> None:
    words = [WordTiming("Meet", 0.1, 0.4), WordTiming("—", 0.4, 0.4), WordTiming("Bob", 0.6, 0.9)]
    phonemes = estimate_phonemes(words)
    assert [p.phoneme for p in phonemes] == ["m", "i", "t", "b", "ɑ", "b"]
    assert phonemes[0].start == 0.1 and abs(phonemes[2].end - 0.4) < 1e-9
    assert phonemes[3].start == 0.6 and abs(phonemes[-1].end - 0.9) < 1e-9
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(phonemes))
    vowel, consonant = phonemes[1], phonemes[0]
    assert abs((vowel.end - vowel.start) - 2 * (consonant.end - consonant.start)) < 1e-9
