"""Phonemes -> visemes -> mouth fields, on synthetic timelines (the real voice's are in test_animation_performance)."""

# ruff: noqa: RUF001  (IPA letters look like Latin ones)

from __future__ import annotations

import numpy as np
import pytest

from services.renderer.animation.visemes import (
    REST,
    TARGETS,
    UNKNOWN,
    MouthTrack,
    mouth_track,
    segments,
    target,
    viseme,
)
from services.renderer.word_timing import TimedPhoneme

FPS = 25
# Every symbol espeak-ng's en-us voice writes in IPA (what piper speaks), and misaki's (hibari's) extras.
ESPEAK_SOUNDS = list("aæɑɐʌəɚɜeɛiɪoɔɒuʊᵻbdfhjklmnpstvwzðθŋɡɹʃʒɾʔçx")
MISAKI_SOUNDS = ["A", "I", "O", "W", "Y", "Q", "ʤ", "ʧ", "ᵊ", "T"]


def timeline(spec: str, step: float = 0.08, start: float = 0.3) -> list[TimedPhoneme]:
    """'m a m a' -> phonemes of `step` s each from `start`."""
    out = []
    for i, p in enumerate(spec.split()):
        out.append(TimedPhoneme(" " if p == "_" else p, start + i * step, start + (i + 1) * step))
    return out


def run(
    spec: str, frames: int = 50, loud: float = 0.8, step: float = 0.08, start: float = 0.3
) -> tuple[MouthTrack, list[TimedPhoneme]]:
    phonemes = timeline(spec, step, start)
    loudness = np.zeros(frames, np.float32)
    first, last = phonemes[0].start, phonemes[-1].end
    n = (np.arange(frames) + 0.5) / FPS
    loudness[(n >= first) & (n <= last)] = loud
    return mouth_track(phonemes, frames, FPS, loudness), phonemes


def centre_frame(p: TimedPhoneme) -> int:
    return int((p.start + p.end) / 2 * FPS)


def test_every_espeak_and_misaki_sound_has_its_own_mouth() -> None:
    for symbol in ESPEAK_SOUNDS + MISAKI_SOUNDS:
        parts = [s for s in segments([TimedPhoneme(symbol, 0.0, 0.1)], 0.1) if s.target is not REST]
        assert parts, symbol
        assert all(s.target is not UNKNOWN for s in parts), symbol


def test_classes_are_rhubarbs() -> None:
    expected = {
        "m": "A", "b": "A", "p": "A", "t": "B", "k": "B", "s": "B", "i": "C", "ɛ": "C", "ɪ": "C",
        "a": "D", "ɑ": "D", "æ": "D", "o": "E", "ɔ": "E", "u": "F", "w": "F", "ʊ": "F",
        "f": "G", "v": "G", "l": "H", "θ": "H", "ð": "H", " ": "X", ",": "X", "^": "X", "ˈ": "X", "ː": "X",
        "O": "E", "tʃ": "B", "t͡ʃ": "B", "n̩": "B",
    }  # fmt: skip
    assert {s: viseme(s) for s in expected} == expected


@pytest.mark.parametrize("symbol", ["", "?", "Ж", "🙂", "q", "ɘ̃ː", "\u0361", "ʘ", "12"])
def test_unknown_symbols_fall_back_to_b_and_never_crash(symbol: str) -> None:
    assert viseme(symbol) in "ABCDEFGHX"
    track = mouth_track([TimedPhoneme(symbol, 0.1, 0.3)], 10, FPS, np.full(10, 0.5, np.float32))
    assert all(np.all(np.isfinite(v)) for v in track)
    assert target("Ж") is UNKNOWN


def test_stress_gives_its_time_to_the_next_sound_and_length_to_the_last() -> None:
    phonemes = [TimedPhoneme("ˈ", 0.0, 0.05), TimedPhoneme("i", 0.05, 0.1), TimedPhoneme("ː", 0.1, 0.2)]
    sounds = [s for s in segments(phonemes, 0.2) if s.target is not REST]
    assert [(s.target, s.start, s.end) for s in sounds] == [(TARGETS["i"], 0.0, 0.2)]


def test_lips_shut_at_the_middle_of_every_m_b_p_even_between_open_vowels() -> None:
    for spec, step in (("a m a b a p a", 0.08), ("ɑ m ɑ p ɑ b ɑ", 0.05), ("a _ m a", 0.035), ("i p i", 0.03)):
        for offset in np.arange(0.0, 0.04, 0.005):  # wherever the sounds fall between frames
            track, phonemes = run(spec, step=step, start=0.3 + offset)
            for p in phonemes:
                if p.phoneme in "mbp":
                    n = centre_frame(p)
                    assert track.press[n] >= 0.8, (spec, offset, p)
                    assert track.jaw[n] <= 0.1, (spec, offset, p)


def test_vowels_between_closures_open() -> None:
    track, phonemes = run("a m a m a", step=0.12, loud=1.0)
    for p in phonemes:
        if p.phoneme == "a":
            n = centre_frame(p)
            assert track.press[n] <= 0.2 and track.jaw[n] >= 0.25, p  # the jaw needs a frame per 0.3


def test_the_jaw_never_snaps() -> None:
    for step in (0.04, 0.06, 0.08):
        track, _ = run("a m a b a p a ɑ m i u a m", step=step, loud=1.0)
        assert float(np.max(np.abs(np.diff(track.jaw)))) <= 0.35
        for name in ("wide", "round", "tongue"):
            assert float(np.max(np.abs(np.diff(getattr(track, name))))) <= 0.45, name
    track, _ = run("m a a a m", loud=1.0)
    assert float(np.max(track.jaw)) >= 0.8  # and still opens wide


def test_rounded_vowels_round_and_spread_vowels_spread() -> None:
    rounded, phonemes = run("s u s o s ʊ s w u")
    spread, _ = run("s i s e s ɪ s j i")
    frames = [centre_frame(p) for p in phonemes if p.phoneme != "s"]
    assert float(np.mean(rounded.round[frames])) > float(np.mean(spread.round[frames])) + 0.4
    assert float(np.mean(rounded.wide[frames])) < float(np.mean(spread.wide[frames])) - 0.5
    ee, phonemes = run("s i s")
    assert ee.wide[centre_frame(phonemes[1])] > 0.3


def test_the_tongue_rises_on_l_and_th_only() -> None:
    track, phonemes = run("a l a ð a k a")
    at = {p.phoneme + str(i): track.tongue[centre_frame(p)] for i, p in enumerate(phonemes)}
    assert at["l1"] > 0.5 and at["ð3"] > 0.5
    assert at["k5"] < 0.3


def test_neighbours_shape_each_other() -> None:
    """The m of "moo" is rounder than the m of "me": coarticulation, not one shape per sound."""
    moo, phonemes = run("m u u")
    me, _ = run("m i i")
    n = centre_frame(phonemes[0])
    assert moo.round[n] > me.round[n] + 0.2


def test_the_jaw_opens_more_on_ah_than_on_ee_at_the_same_loudness() -> None:
    ah, phonemes = run("s a a s")
    ee, _ = run("s i i s")
    frames = [centre_frame(p) for p in phonemes[1:3]]
    assert float(np.mean(ah.jaw[frames])) > float(np.mean(ee.jaw[frames])) + 0.2


def test_silence_and_the_tail_rest_with_the_lips_closed() -> None:
    track, phonemes = run("h ə l oʊ , _ _ w ɜ l d", frames=75)
    end = phonemes[-1].end
    tail = slice(int((end + 0.3) * FPS), 75)
    before = slice(0, int((phonemes[0].start - 0.2) * FPS))
    for part in (before, tail):
        for name in ("jaw", "wide", "round", "tongue"):
            assert float(np.max(np.abs(getattr(track, name)[part]))) < 0.02, name
        assert float(np.min(track.press[part])) >= 0.95
    assert track.jaw[0] == 0.0 and track.jaw[-1] == 0.0


def test_no_loudness_no_opening() -> None:
    phonemes = timeline("a a a a")
    track = mouth_track(phonemes, 20, FPS, np.zeros(20, np.float32))
    assert float(np.max(track.jaw)) == 0.0
