"""Phonemes with times when a voice gives none (only word timings): each word's letters read as rough IPA-like
symbols the viseme map knows, spread over the word's time.

Nothing here is a pronunciation dictionary: English spelling is read by its common letter groups ("ee" -> i,
"oo" -> u, "th" -> θ, "sh" -> ʃ, a silent final "e" dropped), which gets the lip shapes that matter (closures on
m/b/p, rounding on o/u/w, spreading on e/i) right most of the time. Vowels take twice a consonant's time.
"""

# ruff: noqa: RUF001  (IPA letters look like Latin ones)

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from contracts.events import WordTiming
from services.renderer.word_timing import TimedPhoneme

# Longest first: the reader tries each group at the current letter before single letters.
GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "you": ("j", "u"),
    "tch": ("ʧ",),
    "igh": ("a", "ɪ"),
    "ee": ("i",),
    "ea": ("i",),
    "ie": ("i",),
    "oo": ("u",),
    "ou": ("a", "ʊ"),
    "ow": ("o", "ʊ"),
    "oa": ("o", "ʊ"),
    "oi": ("ɔ", "ɪ"),
    "oy": ("ɔ", "ɪ"),
    "ai": ("e", "ɪ"),
    "ay": ("e", "ɪ"),
    "au": ("ɔ",),
    "aw": ("ɔ",),
    "ew": ("j", "u"),
    "er": ("ɚ",),
    "ir": ("ɜ",),
    "ur": ("ɜ",),
    "or": ("ɔ", "ɹ"),
    "ar": ("ɑ", "ɹ"),
    "th": ("θ",),
    "sh": ("ʃ",),
    "ch": ("ʧ",),
    "ph": ("f",),
    "wh": ("w",),
    "ng": ("ŋ",),
    "ck": ("k",),
    "qu": ("k", "w"),
}
LETTERS: Final[dict[str, tuple[str, ...]]] = {
    "a": ("æ",),
    "b": ("b",),
    "c": ("k",),
    "d": ("d",),
    "e": ("ɛ",),
    "f": ("f",),
    "g": ("ɡ",),
    "h": ("h",),
    "i": ("ɪ",),
    "j": ("ʤ",),
    "k": ("k",),
    "l": ("l",),
    "m": ("m",),
    "n": ("n",),
    "o": ("ɑ",),
    "p": ("p",),
    "q": ("k",),
    "r": ("ɹ",),
    "s": ("s",),
    "t": ("t",),
    "u": ("ʌ",),
    "v": ("v",),
    "w": ("w",),
    "x": ("k", "s"),
    "y": ("ɪ",),
    "z": ("z",),
}
# A digit is read as a word with a few sounds; "ə n" is a neutral stand-in for any of them.
DIGIT: Final = ("ə", "n")
_VOWELS: Final = frozenset("aæɑɐʌəɚɜeɛiɪoɔuʊ")
_LONGEST: Final = max(len(g) for g in GROUPS)
# A vowel letter before consonant + silent e says its name: "while", "make", "home".
LONG_VOWELS: Final[dict[str, tuple[str, ...]]] = {
    "a": ("e", "ɪ"),
    "e": ("i",),
    "i": ("a", "ɪ"),
    "o": ("o", "ʊ"),
    "u": ("u",),
}


def letters_to_phonemes(word: str) -> list[str]:
    """A rough reading of one written word."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if c.isalnum() and c.isascii())
    plain = re.sub(r"([b-df-hj-np-tv-z])\1", r"\1", plain)  # doubled consonants are one sound
    if len(plain) > 2 and plain.endswith("e") and plain[-2] not in "aeiouy" and plain[-3] in "aeiouy":
        plain = plain[:-1]  # "while", "make": the final e is silent, the vowel before it long
        long_at = len(plain) - 2
    else:
        long_at = -1
    out: list[str] = []
    i = 0
    while i < len(plain):
        if i == long_at and plain[i] in LONG_VOWELS:
            out.extend(LONG_VOWELS[plain[i]])
            i += 1
            continue
        for size in range(min(_LONGEST, len(plain) - i), 1, -1):
            group = GROUPS.get(plain[i : i + size])
            if group is not None:
                out.extend(group)
                i += size
                break
        else:
            c = plain[i]
            if c == "y" and i == 0:
                out.append("j")
            elif c.isdigit():
                out.extend(DIGIT)
            else:
                out.extend(LETTERS.get(c, ()))
            i += 1
    return out


def estimate_phonemes(words: Sequence[WordTiming]) -> tuple[TimedPhoneme, ...]:
    """Timed phonemes for timed words: each word's sounds fill its time, vowels twice as long as consonants; time
    between words is left out (the mouth rests there)."""
    out: list[TimedPhoneme] = []
    for w in words:
        sounds = letters_to_phonemes(w.word)
        if not sounds or w.end <= w.start:
            continue
        weights = [2.0 if s in _VOWELS else 1.0 for s in sounds]
        scale = (w.end - w.start) / sum(weights)
        at = w.start
        for s, weight in zip(sounds, weights, strict=True):
            out.append(TimedPhoneme(s, at, at + weight * scale))
            at += weight * scale
    return tuple(out)
