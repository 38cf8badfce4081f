"""Word timings from phoneme timings: which stretch of the audio speaks each word of the script.

Both local voices decide every phoneme's duration themselves (piper: its `w_ceil` tensor; hibari: its rounded
duration predictor), so when each phoneme is heard is known to one model frame. What they do not know is the
script's words: they speak the phonemizer's reading of a whole sentence, in which "$19.99" becomes five words,
function words lose their stress or change ("a" is a schwa in context, the letter's name alone) and punctuation
becomes pauses. So each script word is phonemized on its own, and the words' phonemes, one after another, are
aligned to the spoken ones by edit distance; a word then spans the spoken phonemes matched to its own. Stress marks
are dropped from the comparison (they come and go with context) but their time goes to the sound they stress.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from contracts.events import WordTiming

STRESS: Final = frozenset("ˈˌ")  # mark the syllable that follows
MODIFIERS: Final = frozenset("ːˑʰʲʷ")  # length, aspiration, palatalisation: part of the sound before them
_MARKERS: Final = frozenset("^$_")  # piper's begin, end and pad symbols
_DIAG, _UP, _LEFT = 0, 1, 2


class _Kind(enum.Enum):
    SOUND = 1
    STRESS = 2
    MODIFIER = 3
    BOUNDARY = 4  # spaces, punctuation (spoken as pauses), sentence markers


@dataclass(frozen=True)
class TimedPhoneme:
    """One spoken phoneme and when it is heard, in seconds from the start of the speech."""

    phoneme: str
    start: float
    end: float


def script_words(text: str) -> list[str]:
    """The words as written: split at white space, punctuation kept on the word it touches."""
    return text.split()


def _kind(phoneme: str) -> _Kind:
    if not phoneme or phoneme.isspace() or phoneme in _MARKERS:
        return _Kind.BOUNDARY
    if phoneme in STRESS:
        return _Kind.STRESS
    if phoneme in MODIFIERS or all(unicodedata.category(c).startswith("M") for c in phoneme):
        return _Kind.MODIFIER
    if all(unicodedata.category(c)[0] in "PSZ" for c in phoneme):
        return _Kind.BOUNDARY
    return _Kind.SOUND


def sounds(phonemes: Sequence[str]) -> list[str]:
    """The phonemes that are sounds: what two readings of the same word are compared on."""
    return [p for p in phonemes if _kind(p) is _Kind.SOUND]


def _spoken_sounds(spoken: Sequence[TimedPhoneme]) -> list[TimedPhoneme]:
    """The sounds, each widened by the stress mark before it and the modifiers after it."""
    out: list[TimedPhoneme] = []
    stress_start: float | None = None
    previous = _Kind.BOUNDARY
    for p in spoken:
        kind = _kind(p.phoneme)
        if kind is _Kind.SOUND:
            out.append(TimedPhoneme(p.phoneme, p.start if stress_start is None else stress_start, p.end))
            stress_start = None
        elif kind is _Kind.STRESS:
            stress_start = p.start if stress_start is None else stress_start
        elif kind is _Kind.MODIFIER and previous in (_Kind.SOUND, _Kind.MODIFIER) and out:
            out[-1] = TimedPhoneme(out[-1].phoneme, out[-1].start, p.end)
        elif kind is _Kind.BOUNDARY:
            stress_start = None
        previous = kind
    return out


def _alignment(expected: Sequence[int], spoken: Sequence[int]) -> list[int | None]:
    """For each expected symbol, the index of the spoken symbol it is matched (or substituted) to, if any.

    Levenshtein alignment, one numpy row at a time: the row's left-to-right dependency (spoken symbols left
    unmatched) is a running minimum, so a 200x200 alignment takes about a millisecond.
    """
    n, m = len(expected), len(spoken)
    if n == 0 or m == 0:
        return [None] * n
    spoken_arr = np.asarray(spoken, dtype=np.int64)
    cols = np.arange(m + 1, dtype=np.int64)
    row = cols.copy()
    back = np.empty((n + 1, m + 1), dtype=np.uint8)
    back[0, :] = _LEFT
    for i in range(1, n + 1):
        diag = row[:-1] + (spoken_arr != expected[i - 1])
        up = row[1:] + 1
        best = np.minimum(diag, up)
        step: npt.NDArray[np.uint8] = np.where(diag <= up, _DIAG, _UP).astype(np.uint8)
        full = np.concatenate(([i], best))
        new_row = np.minimum.accumulate(full - cols) + cols
        back[i, 0] = _UP
        back[i, 1:] = np.where(new_row[1:] < best, _LEFT, step)
        row = new_row
    matched: list[int | None] = [None] * n
    i, j = n, m
    while i > 0:
        move = back[i, j]
        if move == _DIAG:
            matched[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif move == _UP:
            i -= 1
        else:
            j -= 1
    return matched


def align_words(
    words: Sequence[str], expected: Sequence[Sequence[str]], spoken: Sequence[TimedPhoneme]
) -> list[WordTiming]:
    """Time every word in `words` (in order, all of them) from the phonemes each is expected to sound as, read
    alone (`expected`, one list per word), and the phonemes actually spoken, with their times (`spoken`).

    A word none of whose sounds were spoken (punctuation standing alone, such as a dash) gets no time of its own:
    it starts and ends where the word before it ends.
    """
    if len(words) != len(expected):
        raise ValueError("one phoneme reading per word is needed")
    units = _spoken_sounds(spoken)
    codes: dict[str, int] = {}
    owner: list[int] = []
    flat: list[int] = []
    for index, reading in enumerate(expected):
        for sound in sounds(reading):
            flat.append(codes.setdefault(sound, len(codes)))
            owner.append(index)
    matched = _alignment(flat, [codes.setdefault(u.phoneme, len(codes)) for u in units])
    first: list[int | None] = [None] * len(words)
    last: list[int | None] = [None] * len(words)
    for word_index, unit_index in zip(owner, matched, strict=True):
        if unit_index is None:
            continue
        if first[word_index] is None:
            first[word_index] = unit_index
        last[word_index] = unit_index
    timings: list[WordTiming] = []
    previous_end = units[0].start if units else 0.0  # a leading word with no sound sits where speech starts
    for word, a, b in zip(words, first, last, strict=True):
        if a is None or b is None:
            start = end = previous_end
        else:
            start, end = max(units[a].start, previous_end), max(units[b].end, previous_end)
        timings.append(WordTiming(word, round(float(start), 3), round(float(end), 3)))
        previous_end = end
    return timings


def snap_to_sound(
    words: Sequence[WordTiming],
    samples: npt.NDArray[np.int16],
    sample_rate: int,
    *,
    reach_s: float = 0.06,
    min_seconds: float = 0.08,
) -> list[WordTiming]:
    """Move each word's edges onto the sound: in over silence, out over sound by at most `reach_s`.

    For models whose durations and sound disagree at the edges: hibari gives a sentence's final vowel the whole
    pause before the full stop (the word would stay lit through it) and its sound runs 25-50 ms ahead of its
    durations. A word never grows past its neighbours. Only for bit-exact audio: on a waveform with random noise
    the edges would move from run to run.
    """
    frame = max(1, round(0.01 * sample_rate))
    count = len(samples) // frame
    power = np.mean(np.square(samples[: count * frame].astype(np.float64).reshape(count, frame)), axis=1)
    if not np.any(power > 0):
        return list(words)
    # 35 dB under the loud part of the speech: well above the model's near-silence, below soft consonants.
    voiced = power > np.percentile(power[power > 0], 90) * 10 ** (-35 / 10)
    per_second = sample_rate / frame

    def at(seconds: float) -> int:
        return round(seconds * per_second)

    reach, shortest = at(reach_s), at(min_seconds)
    out: list[WordTiming] = []
    for i, w in enumerate(words):
        lo, hi = at(w.start), min(count, at(w.end))
        inside = np.flatnonzero(voiced[lo:hi])
        if hi - lo < shortest or inside.size == 0:
            out.append(w)
            continue
        first, last = lo + int(inside[0]), lo + int(inside[-1]) + 1
        floor = at(out[-1].end) if out else 0
        ceiling = at(words[i + 1].start) if i + 1 < len(words) else count
        if first == lo:  # sound at the start: it may begin a little earlier
            while first > max(floor, lo - reach) and voiced[first - 1]:
                first -= 1
        if last == hi:
            while last < min(ceiling, hi + reach, count) and voiced[last]:
                last += 1
        if last - first < shortest:  # a blip in silence: keep what the model said
            out.append(w)
            continue
        # Frames are coarser than the timings: clamp in seconds so words still never overlap.
        start = max(round(first / per_second, 3), out[-1].end if out else 0.0)
        end = min(round(last / per_second, 3), words[i + 1].start if i + 1 < len(words) else len(samples) / sample_rate)
        out.append(WordTiming(w.word, start, max(start, end)))
    return out
