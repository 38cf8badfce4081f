"""Estimated word timings: a line's words spread over the speech found in a clip that came without timings (Veo).

Nothing here hears the words: the times are a reasoned guess, good enough for captions that light the word being
said and change phrase where the speaker pauses. The approach, all deterministic:

1. Each word gets a spoken length in syllable units: its vowel groups (a silent final "e" dropped), digits and
   symbols as the words they are read as, plus a little per character, since "strengths" takes longer than "a".
   A word made of punctuation alone ("—") is not spoken: it takes no time. Punctuation at a word's end adds a
   pause after it, longer after a sentence than after a clause.
2. First guess: the units laid end to end over the whole speech, from its first voiced moment to its last.
3. Each punctuation pause is paired with at most one silence the audio shows between voiced stretches, in order:
   the pairing with the least total shift from the first guess, where leaving a pause unpaired costs as much as the
   largest shift allowed (so it pairs whenever a silence is near enough). When the counts agree and the guess is
   near, every comma and full stop lands on its silence; a comma the speaker ran through keeps its guess.
4. A silence left over (a breath where the text has no punctuation) still falls between two words, since nobody
   speaks into a silence: it goes to the word boundary nearest to it, guessed as in 2 but between the silences
   already placed on either side of it.
5. Each placed silence pins the word before it to end where the silence starts and the word after it to start where
   it ends. The words between two pins are laid out again by their units over the voiced time between them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from contracts.events import WordTiming
from services.renderer.speech_span import SpeechSpan
from services.renderer.word_timing import script_words

CHAR_UNITS: Final = 0.08  # per letter or digit, on top of the syllables
DIGIT_UNITS: Final = 1.5  # "20" is "twenty", "1999" is "nineteen ninety-nine"
SYMBOL_UNITS: Final = {"%": 2.0, "$": 2.0, "€": 2.0, "£": 2.0, "&": 1.0, "+": 1.0, "@": 1.0, "#": 1.0}
CLAUSE_PAUSE_UNITS: Final = 1.0  # after , ; : and dashes: a short breath
SENTENCE_PAUSE_UNITS: Final = 2.0  # after . ! ? …
# How far (s) a punctuation pause may move from the first guess onto a silence: at least this, or the fraction
# of the speech below, since a long line's guess drifts further in the middle.
REACH_MIN_S: Final = 0.5
REACH_FRACTION: Final = 0.25

_CLOSERS: Final = "\"'\u201d\u2019)]"
_SENTENCE_END: Final = re.compile(rf"[.!?\u2026][{re.escape(_CLOSERS)}]*$")
_CLAUSE_END: Final = re.compile(rf"[,;:\u2014\u2013][{re.escape(_CLOSERS)}]*$|^[-\u2014\u2013]+$")
_VOWEL_GROUP: Final = re.compile(r"[aeiouy]+")
_SILENT_E: Final = re.compile(r"[^aeiouy]e$")
_SPOKEN_LE: Final = re.compile(r"[^aeiouy]le$")


def spoken_units(word: str) -> float:
    """How long `word` takes to say, in syllables (a character's worth more or less)."""
    plain = unicodedata.normalize("NFKD", word.lower())
    letters = "".join(c for c in plain if c.isalpha())
    digits = sum(c.isdigit() for c in plain)
    symbols = sum(SYMBOL_UNITS.get(c, 0.0) for c in plain)
    if not letters and not digits and not symbols:
        return 0.0
    syllables = len(_VOWEL_GROUP.findall(letters))
    if syllables > 1 and _SILENT_E.search(letters) and not _SPOKEN_LE.search(letters):
        syllables -= 1  # "while" and "sunrise" lose a vowel group; "people" and "agree" keep theirs
    if letters:
        syllables = max(1, syllables)  # "rhythm"'s vowel is a y; "TV" has none written at all
    return syllables + DIGIT_UNITS * digits + symbols + CHAR_UNITS * (len(letters) + digits)


def pause_units(word: str) -> float:
    """The pause its punctuation puts after `word`."""
    if _SENTENCE_END.search(word):
        return SENTENCE_PAUSE_UNITS
    if _CLAUSE_END.search(word):
        return CLAUSE_PAUSE_UNITS
    return 0.0


def estimate_words(line: str, speech: SpeechSpan) -> list[WordTiming]:
    """The words of `line` (as `script_words` splits it), in order, each timed inside `speech`."""
    words = script_words(line)
    if not words:
        return []
    units = [spoken_units(w) for w in words]
    pauses = [*(pause_units(w) for w in words[:-1]), 0.0]
    silences = speech.pauses
    middles = [(a + b) / 2 for a, b in silences]
    # Pins: the word after which a silence falls -> that silence's index. Punctuation first, then the rest.
    breaks = [i for i, p in enumerate(pauses) if p > 0]
    guess = _linear(units, pauses, speech.start, speech.end)
    reach = max(REACH_MIN_S, REACH_FRACTION * (speech.end - speech.start))
    pins = {breaks[b]: s for b, s in _pair([guess[i] for i in breaks], middles, reach)}
    for s in range(len(silences)):
        if s in pins.values():
            continue
        first, last, lo, hi = _segment(pins, s, len(words), speech)
        if first == last:
            continue  # a silence inside one word between pins: a long closure; the word spans it
        inside = _linear(units[first : last + 1], [*pauses[first:last], 0.0], lo, hi)
        pins[min(range(first, last), key=lambda k: abs(inside[k - first] - middles[s]))] = s
    timed: list[WordTiming] = []
    first, lo = 0, speech.start
    for word, s in sorted(pins.items()):
        timed += _lay_between(words, units, pauses, first, word, (lo, silences[s][0]), speech)
        first, lo = word + 1, silences[s][1]
    timed += _lay_between(words, units, pauses, first, len(words) - 1, (lo, speech.end), speech)
    return _monotonic(timed)


def _segment(pins: dict[int, int], silence: int, count: int, speech: SpeechSpan) -> tuple[int, int, float, float]:
    """The words (first, last) and the time (from, to) between the pins around `silence`."""
    before = [w for w, s in pins.items() if s < silence]
    after = [w for w, s in pins.items() if s > silence]
    first = max(before) + 1 if before else 0
    last = min(after) if after else count - 1
    lo = speech.pauses[pins[first - 1]][1] if before else speech.start
    hi = speech.pauses[pins[last]][0] if after else speech.end
    return first, last, lo, hi


def _lay_between(
    words: Sequence[str],
    units: Sequence[float],
    pauses: Sequence[float],
    first: int,
    last: int,
    bounds: tuple[float, float],
    speech: SpeechSpan,
) -> list[WordTiming]:
    """Words `first`..`last` laid over the voiced time within `bounds`."""
    lo, hi = bounds
    voiced = [(max(s, lo), min(e, hi)) for s, e in speech.stretches if min(e, hi) > max(s, lo)] or [(lo, hi)]
    return _lay(words[first : last + 1], units[first : last + 1], [*pauses[first:last], 0.0], voiced)


def _linear(units: Sequence[float], pauses: Sequence[float], start: float, end: float) -> list[float]:
    """The first guess at when each word's following pause is at its middle, all units laid end to end."""
    total = sum(units) + sum(pauses)
    per_unit = (end - start) / total if total > 0 else 0.0
    out: list[float] = []
    at = 0.0
    for u, p in zip(units, pauses, strict=True):
        at += u
        out.append(start + (at + p / 2) * per_unit)
        at += p
    return out


def _pair(guesses: Sequence[float], silences: Sequence[float], reach: float) -> list[tuple[int, int]]:
    """Pairs (guess index, silence index), both increasing: least total |shift|, an unpaired guess costing `reach`,
    an unpaired silence nothing, no shift over `reach`. Dynamic programming, as an edit distance."""
    n, m = len(guesses), len(silences)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i * reach
        for j in range(1, m + 1):
            shift = abs(guesses[i - 1] - silences[j - 1])
            paired = cost[i - 1][j - 1] + shift if shift <= reach else math.inf
            cost[i][j] = min(paired, cost[i][j - 1], cost[i - 1][j] + reach)
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        shift = abs(guesses[i - 1] - silences[j - 1])
        if shift <= reach and cost[i][j] == cost[i - 1][j - 1] + shift:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i][j - 1]:
            j -= 1
        else:
            i -= 1
    return pairs[::-1]


def _lay(
    words: Sequence[str], units: Sequence[float], pauses: Sequence[float], voiced: Sequence[tuple[float, float]]
) -> list[WordTiming]:
    """`words` laid end to end by their units (and the pauses between them) over the voiced time only."""
    total = sum(units) + sum(pauses)
    room = sum(e - s for s, e in voiced)
    scale = room / total if total > 0 else 0.0
    out: list[WordTiming] = []
    at = 0.0
    for word, u, p in zip(words, units, pauses, strict=True):
        if u > 0 or not out:
            start = _at(voiced, at * scale, starting=True)
            end = _at(voiced, (at + u) * scale, starting=False)
        else:  # not spoken: where the word before it ends, not at the start of the next stretch
            start = end = out[-1].end
        out.append(WordTiming(word, start, end))
        at += u + p
    return out


def _at(voiced: Sequence[tuple[float, float]], offset: float, *, starting: bool) -> float:
    """The moment `offset` seconds of voiced time into `voiced`. At the very edge of a stretch a start belongs to
    the next stretch and an end to the one before, so no word starts or ends inside a silence."""
    for s, e in voiced:
        length = e - s
        if offset < length or (not starting and offset <= length):
            return s + max(0.0, offset)
        offset -= length
    return voiced[-1][1]


def _monotonic(words: Sequence[WordTiming]) -> list[WordTiming]:
    """Rounded to the millisecond, each word starting no earlier than the one before it ends."""
    out: list[WordTiming] = []
    previous = 0.0
    for w in words:
        start = max(round(w.start, 3), previous)
        end = max(round(w.end, 3), start)
        out.append(WordTiming(w.word, start, end))
        previous = end
    return out
