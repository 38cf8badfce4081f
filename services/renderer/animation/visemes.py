"""Mouth shapes from phonemes: each spoken sound -> a viseme class and its target mouth, blended with coarticulation.

Classes are Rhubarb Lip Sync's (A-H, X): A = m/b/p closed; B = most consonants, teeth slightly apart; C = e/i/ɛ
spread open; D = a/ɑ/æ wide open; E = o/ɔ rounded; F = u/w/ʊ small round; G = f/v lower lip to the teeth; H = l/θ/ð
tongue; X = rest. Each symbol has its own target inside its class (an "ee" is wider than an "eh").

Coarticulation is Cohen & Massaro's (1993): every sound has, per mouth field, a dominance that is full during the
sound and falls off as a Gaussian outside it, and each field is the dominance-weighted mean of all sounds' targets.
Neighbours therefore shape each other (the "m" of "moon" is already round, the jaw starts closing before a "p"),
and nothing snaps. m/b/p are dominant in `press` and `jaw`, so the lips shut at their middle whatever surrounds them;
a frame that contains a closure's middle shows that moment (a closure can be shorter than a frame).

The jaw's amplitude comes from the voice's loudness (`mouth.openness`): the phonemes decide its shape (wide on "ah",
a little on "ee", shut on "m"), the loudness how far, so the opening stays in step with what is heard. Where the
voice is silent every field returns to rest (X: closed, lips lightly together).
"""

# ruff: noqa: RUF001, RUF002, RUF003  (IPA letters, as espeak-ng writes them, look like Latin ones)

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from services.renderer.word_timing import MODIFIERS, STRESS, TimedPhoneme

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Target:
    """A sound's mouth (Pose's mouth fields) and how strongly it holds each field against its neighbours."""

    viseme: str
    jaw: float = 0.0
    wide: float = 0.0
    round: float = 0.0
    press: float = 0.0
    tongue: float = 0.0
    # Dominance per field: jaw, wide, round, press, tongue.
    dominance: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)
    spread_s: float = 0.035  # how far the dominance reaches beyond the sound's own time (the falloff's width)


_VOWEL: Final = (1.0, 1.0, 1.0, 1.0, 0.5)
_CONSONANT: Final = (0.8, 0.4, 0.4, 1.0, 0.6)  # lips keep the vowels' shape through most consonants
_LIP_SHAPER: Final = (0.8, 1.2, 1.5, 1.0, 0.6)  # w, ʃ, ɹ, j: the consonant shapes the lips
_TONGUE: Final = (0.8, 0.4, 0.4, 1.0, 3.0)
_BILABIAL: Final = (8.0, 0.6, 0.6, 12.0, 0.6)
_LABIODENTAL: Final = (2.0, 0.6, 0.6, 4.0, 0.6)
_WEAK: Final = (0.2, 0.2, 0.2, 0.2, 0.2)  # h: the next vowel's mouth

# At rest the lips are closed (a photo smiling with its teeth showing shuts them); they shut as the voice stops
# (`_activity`), so rest pulls only weakly on the sounds beside it.
REST: Final = Target("X", press=1.0, dominance=(1.0, 1.0, 1.0, 0.4, 1.0))
UNKNOWN: Final = Target("B", jaw=0.2, wide=0.05, dominance=_CONSONANT)
_WORD_GAP: Final = Target("X", press=0.1, dominance=(0.3, 0.3, 0.3, 0.3, 0.3))  # a space inside running speech

TARGETS: Final[dict[str, Target]] = {
    # Spread vowels (C).
    "i": Target("C", jaw=0.25, wide=0.8, dominance=_VOWEL),
    "ɪ": Target("C", jaw=0.35, wide=0.55, dominance=_VOWEL),
    "ᵻ": Target("C", jaw=0.35, wide=0.45, dominance=_VOWEL),
    "e": Target("C", jaw=0.45, wide=0.6, dominance=_VOWEL),
    "ɛ": Target("C", jaw=0.55, wide=0.45, dominance=_VOWEL),
    "ə": Target("C", jaw=0.45, wide=0.1, dominance=(0.8, 0.6, 0.6, 1.0, 0.5)),
    "ᵊ": Target("C", jaw=0.35, wide=0.1, dominance=(0.6, 0.5, 0.5, 1.0, 0.5)),
    "ɨ": Target("C", jaw=0.35, wide=0.3, dominance=_VOWEL),
    "y": Target("F", jaw=0.25, wide=-0.3, round=0.8, dominance=_VOWEL),  # not English; French "u"
    # Open vowels (D).
    "æ": Target("D", jaw=0.8, wide=0.45, dominance=_VOWEL),
    "a": Target("D", jaw=1.0, wide=0.2, dominance=_VOWEL),
    "ɑ": Target("D", jaw=1.0, wide=0.0, dominance=_VOWEL),
    "ɐ": Target("D", jaw=0.7, wide=0.1, dominance=_VOWEL),
    "ʌ": Target("D", jaw=0.7, wide=0.1, dominance=_VOWEL),
    # Rounded vowels (E, F).
    "ɒ": Target("E", jaw=0.85, wide=-0.3, round=0.4, dominance=_VOWEL),
    "ɔ": Target("E", jaw=0.7, wide=-0.3, round=0.55, dominance=_VOWEL),
    "o": Target("E", jaw=0.55, wide=-0.4, round=0.7, dominance=_VOWEL),
    "ɜ": Target("E", jaw=0.4, wide=-0.1, round=0.35, dominance=_VOWEL),
    "ɚ": Target("E", jaw=0.4, wide=-0.1, round=0.35, dominance=_VOWEL),
    "ɝ": Target("E", jaw=0.4, wide=-0.1, round=0.35, dominance=_VOWEL),
    "ɵ": Target("E", jaw=0.4, wide=-0.2, round=0.5, dominance=_VOWEL),
    "ø": Target("E", jaw=0.4, wide=-0.3, round=0.6, dominance=_VOWEL),
    "ʊ": Target("F", jaw=0.3, wide=-0.5, round=0.75, dominance=_VOWEL),
    "u": Target("F", jaw=0.2, wide=-0.7, round=1.0, dominance=_VOWEL),
    "w": Target("F", jaw=0.1, wide=-0.8, round=1.0, dominance=_LIP_SHAPER),
    # Lips shut (A).
    "m": Target("A", press=1.0, dominance=_BILABIAL, spread_s=0.02),
    "b": Target("A", press=1.0, dominance=_BILABIAL, spread_s=0.02),
    "p": Target("A", press=1.0, dominance=_BILABIAL, spread_s=0.02),
    # Lower lip to the teeth (G).
    "f": Target("G", jaw=0.1, wide=0.1, press=0.35, dominance=_LABIODENTAL, spread_s=0.02),
    "v": Target("G", jaw=0.1, wide=0.1, press=0.35, dominance=_LABIODENTAL, spread_s=0.02),
    # Tongue (H): tongue tip up and visible.
    "θ": Target("H", jaw=0.2, wide=0.1, tongue=1.0, dominance=_TONGUE),
    "ð": Target("H", jaw=0.2, wide=0.1, tongue=1.0, dominance=_TONGUE),
    "l": Target("H", jaw=0.3, tongue=0.9, dominance=_TONGUE),
    "ɫ": Target("H", jaw=0.3, tongue=0.9, dominance=_TONGUE),
    # Other consonants (B): teeth nearly together; the tongue up on the alveolars.
    "t": Target("B", jaw=0.18, wide=0.15, tongue=0.7, dominance=_TONGUE),
    "d": Target("B", jaw=0.18, wide=0.15, tongue=0.7, dominance=_TONGUE),
    "n": Target("B", jaw=0.18, wide=0.1, tongue=0.7, dominance=_TONGUE),
    "ɾ": Target("B", jaw=0.25, wide=0.1, tongue=0.6, dominance=_TONGUE),
    "s": Target("B", jaw=0.1, wide=0.3, dominance=(0.8, 0.8, 0.4, 1.0, 0.6)),
    "z": Target("B", jaw=0.1, wide=0.3, dominance=(0.8, 0.8, 0.4, 1.0, 0.6)),
    "ʃ": Target("B", jaw=0.15, wide=-0.2, round=0.45, dominance=_LIP_SHAPER),
    "ʒ": Target("B", jaw=0.15, wide=-0.2, round=0.45, dominance=_LIP_SHAPER),
    "ʧ": Target("B", jaw=0.15, wide=-0.2, round=0.45, dominance=_LIP_SHAPER),
    "ʤ": Target("B", jaw=0.15, wide=-0.2, round=0.45, dominance=_LIP_SHAPER),
    "ɹ": Target("B", jaw=0.2, wide=-0.2, round=0.4, dominance=_LIP_SHAPER),
    "r": Target("B", jaw=0.2, wide=-0.2, round=0.4, dominance=_LIP_SHAPER),
    "j": Target("C", jaw=0.2, wide=0.6, dominance=_LIP_SHAPER),
    "k": Target("B", jaw=0.3, wide=0.05, dominance=_CONSONANT),
    "ɡ": Target("B", jaw=0.3, wide=0.05, dominance=_CONSONANT),
    "g": Target("B", jaw=0.3, wide=0.05, dominance=_CONSONANT),
    "ŋ": Target("B", jaw=0.25, wide=0.05, dominance=_CONSONANT),
    "x": Target("B", jaw=0.3, dominance=_CONSONANT),
    "ç": Target("B", jaw=0.2, wide=0.3, dominance=_CONSONANT),
    "ʔ": Target("B", jaw=0.1, dominance=_CONSONANT),
    "h": Target("B", jaw=0.35, dominance=_WEAK),
}

# Symbols that stand for two sounds said one after the other: affricates written with two letters, diphthongs in
# espeak's pairs, and misaki's capitals (what hibari speaks: A = eɪ, I = aɪ, O = oʊ, W = aʊ, Y = ɔɪ, Q = əʊ).
COMPOUNDS: Final[dict[str, tuple[str, ...]]] = {
    "A": ("e", "ɪ"),
    "I": ("a", "ɪ"),
    "O": ("o", "ʊ"),
    "W": ("a", "ʊ"),
    "Y": ("ɔ", "ɪ"),
    "Q": ("ə", "ʊ"),
    "tʃ": ("ʧ",),
    "dʒ": ("ʤ",),
    "T": ("ɾ",),  # misaki's flapped t in some lexicons
}

_STRESS: Final = STRESS
_LENGTH: Final = MODIFIERS | frozenset("ˠˤ̃")  # velarised, pharyngealised, nasalised: the sound before them too
_TIE: Final = frozenset("\u0361\u035c")


def _is_modifier(symbol: str) -> bool:
    return bool(symbol) and all(c in _LENGTH or unicodedata.category(c).startswith("M") for c in symbol)


def _is_boundary(symbol: str) -> bool:
    """Spaces, punctuation, piper's ^ $ _ markers: no sound of its own."""
    return not symbol or all(c.isspace() or unicodedata.category(c)[0] in "PSZ" for c in symbol)


def target(symbol: str) -> Target:
    """The mouth for one sound symbol; anything unknown gets B (a consonant's slightly open teeth)."""
    return TARGETS.get(symbol, UNKNOWN)


def viseme(symbol: str) -> str:
    """The Rhubarb class (A-H, X) of one phoneme symbol as a voice emits it."""
    if _is_boundary(symbol) or symbol in _STRESS or _is_modifier(symbol):
        return "X"
    parts = _parts(symbol)
    return target(parts[0]).viseme if parts else "X"


def _parts(symbol: str) -> tuple[str, ...]:
    """The sounds in one emitted symbol, in order (most symbols are one)."""
    clean = "".join(c for c in symbol if c not in _TIE and c not in _STRESS and not _is_modifier(c))
    if not clean:
        return ()
    if clean in TARGETS:
        return (clean,)
    if clean in COMPOUNDS:
        return COMPOUNDS[clean]
    out: list[str] = []
    for c in clean:
        out.extend(COMPOUNDS.get(c, (c,)))
    return tuple(out)


@dataclass(frozen=True)
class Segment:
    """A stretch of time the mouth aims at one target, seconds."""

    target: Target
    start: float
    end: float

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2


def segments(phonemes: Sequence[TimedPhoneme], duration_s: float) -> list[Segment]:
    """The timeline as mouth targets covering [0, duration_s] and a little beyond: stress marks give their time to
    the sound after them, length marks to the sound before, compound symbols are split evenly, and every moment no
    sound covers (before, between, after) is rest."""
    out: list[Segment] = []
    stress_start: float | None = None
    for p in sorted(phonemes, key=lambda p: p.start):
        symbol = p.phoneme
        if symbol in _STRESS:
            stress_start = p.start if stress_start is None else stress_start
            continue
        if _is_modifier(symbol):
            if out and out[-1].target.viseme != "X":
                last = out[-1]
                out[-1] = Segment(last.target, last.start, max(last.end, p.end))
            continue
        start = p.start if stress_start is None else min(stress_start, p.start)
        stress_start = None
        if _is_boundary(symbol):
            gap = _WORD_GAP if symbol.isspace() else REST
            out.append(Segment(gap, start, p.end))
            continue
        parts = _parts(symbol) or ("?",)
        step = (p.end - start) / len(parts)
        out.extend(Segment(target(s), start + i * step, start + (i + 1) * step) for i, s in enumerate(parts))
    filled: list[Segment] = []
    at = -0.5  # rest before the first sound, so the track starts at rest
    for s in out:
        if s.start > at + 1e-6:
            filled.append(Segment(REST, at, s.start))
        filled.append(s)
        at = max(at, s.end)
    filled.append(Segment(REST, at, max(at, duration_s) + 0.5))
    return filled


class MouthTrack(NamedTuple):
    jaw: Floats
    wide: Floats
    round: Floats
    press: Floats
    tongue: Floats


# The jaw's opening = loudness x (JAW_FLOOR + JAW_GAIN x the sounds' jaw target): the sounds shape it, the voice
# sizes it. The floor keeps every voiced frame moving with the loudness.
JAW_FLOOR: Final = 0.4
JAW_GAIN: Final = 0.8
MAX_JAW_STEP: Final = 0.3  # per frame at 25 fps: the most the jaw opens or closes between frames
MAX_PRESS_STEP: Final = 0.8  # lips part fast: a release is a burst
MAX_ROUND_STEP: Final = 0.35
MAX_WIDE_STEP: Final = 0.35
MAX_TONGUE_STEP: Final = 0.4
# After the voice stops, the lips keep their shape this long (a final "p" is silent; a breath is not a pose)...
HOLD_S: Final = 0.15
# ...then go to rest.
RELAX_S: Final = 0.1


def _sample_times(segs: Sequence[Segment], frames: int, fps: float) -> npt.NDArray[np.float64]:
    """When each frame is looked at: its middle, or the middle of a lip closure that happens during it."""
    times = (np.arange(frames, dtype=np.float64) + 0.5) / fps
    taken = np.zeros(frames, bool)
    for s in segs:
        if s.target.viseme == "A":
            n = int(s.centre * fps)
            if 0 <= n < frames and not taken[n]:
                times[n] = s.centre
                taken[n] = True
    return times


def _blend(segs: Sequence[Segment], times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each field at each time: the dominance-weighted mean of the targets (fields, times)."""
    centres = np.array([s.centre for s in segs])
    halves = np.array([(s.end - s.start) / 2 for s in segs])
    reach = np.array([s.target.spread_s for s in segs])
    values = np.array([[s.target.jaw, s.target.wide, s.target.round, s.target.press, s.target.tongue] for s in segs])
    alphas = np.array([s.target.dominance for s in segs])
    # Full inside the sound's own time, falling off outside it: a long sound reaches its target, short ones blend.
    distance = np.maximum(np.abs(times[None, :] - centres[:, None]) - halves[:, None], 0.0) / reach[:, None]
    falloff = np.exp(-(distance**2))  # (segments, times)
    weights = alphas[:, :, None] * falloff[:, None, :] + 1e-9  # (segments, fields, times)
    blended: npt.NDArray[np.float64] = np.sum(weights * values[:, :, None], axis=0) / np.sum(weights, axis=0)
    return blended


def _cone_min(values: npt.NDArray[np.float64], step: float) -> npt.NDArray[np.float64]:
    """The largest signal under `values` that changes by at most `step` per frame: keeps every low point (a
    closure) and lowers only what rises too fast around it."""
    out = values.copy()
    for i in range(1, len(out)):
        out[i] = min(out[i], out[i - 1] + step)
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(out[i], out[i + 1] + step)
    return out


def _activity(loudness: Floats, fps: float) -> npt.NDArray[np.float64]:
    """1 while the voice is heard or was heard within HOLD_S, easing to 0 over RELAX_S after."""
    voiced = np.asarray(loudness) > 0
    hold = round(HOLD_S * fps)
    near = voiced.copy()
    for k in range(1, hold + 1):
        near[k:] |= voiced[:-k]
        near[:-k] |= voiced[k:]
    relax = max(1, round(RELAX_S * fps))
    kernel = np.hanning(2 * relax + 3)[1:-1]
    kernel /= kernel.sum()
    smooth: npt.NDArray[np.float64] = np.convolve(near.astype(np.float64), kernel, mode="same")
    return np.clip(smooth, 0.0, 1.0)


def mouth_track(phonemes: Sequence[TimedPhoneme], frames: int, fps: float, loudness: Floats) -> MouthTrack:
    """The mouth fields on each of `frames` frames at `fps` from the timed phonemes and the per-frame loudness
    (`mouth.openness`, 0..1, exactly 0 in silence)."""
    if frames == 0:
        empty = np.zeros(0, np.float32)
        return MouthTrack(empty, empty, empty, empty, empty)
    loud = np.asarray(loudness, np.float64)
    segs = segments(phonemes, frames / fps)
    jaw_shape, wide, rounded, press, tongue = _blend(segs, _sample_times(segs, frames, fps))
    steps = fps / 25.0  # limits are per 25 fps frame
    active = _activity(loudness, fps)
    press = REST.press + active * (press - REST.press)
    press = 1.0 - _cone_min(1.0 - press, MAX_PRESS_STEP / steps)
    # Peaks (a round "oo", a raised tongue) are kept and the slopes around them eased; wide goes both ways, so the
    # mean of its two cones (each changes by at most the step, so their mean does too).
    wide = active * wide
    wide = (_cone_min(wide, MAX_WIDE_STEP / steps) - _cone_min(-wide, MAX_WIDE_STEP / steps)) / 2
    tongue = -_cone_min(-(active * tongue), MAX_TONGUE_STEP / steps)
    rounded = -_cone_min(-(active * rounded), MAX_ROUND_STEP / steps)
    jaw = loud * (JAW_FLOOR + JAW_GAIN * jaw_shape) * (1.0 - press) ** 2
    jaw = _cone_min(np.clip(jaw, 0.0, 1.0), MAX_JAW_STEP / steps)
    return MouthTrack(
        *(
            np.asarray(np.clip(v, lo, 1.0), np.float32)
            for v, lo in ((jaw, 0.0), (wide, -1.0), (rounded, 0.0), (press, 0.0), (tongue, 0.0))
        )
    )
