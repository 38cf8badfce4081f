"""Caption phrases: the script's timed words grouped into short phrases, and when each phrase is on screen.

Shared by the burned-in captions (renderer) and the WebVTT file (merger), so a viewer who switches the player's
captions on sees the same phrases, at the same moments, as the ones in the picture. The grouping depends on the
words and their timings only, never on a frame size: each frame layout then fits a phrase into at most two lines
(by wrapping and, if it has to, a smaller font), which MAX_PHRASE_CHARS makes rare.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final

from contracts.events import WordTiming

# One line on 16:9, two on 9:16 and 1:1 (at the caption size); short enough to read at a glance while spoken.
MAX_PHRASE_CHARS: Final = 36
# A pause this long is a breath between thoughts: the next words start a new phrase.
PAUSE_BREAK_S: Final = 0.35
# How long a phrase stays after its last word when nothing follows at once: long enough to finish reading it.
HOLD_S: Final = 0.6

_SENTENCE_END: Final = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
_CLAUSE_END: Final = re.compile(r"[,;:\u2014\u2013][\"'\u201d\u2019)\]]*$|^[-\u2014\u2013]+$")


def _chars(words: Sequence[WordTiming]) -> int:
    return sum(len(w.word) for w in words) + max(0, len(words) - 1)


def group_phrases(words: Sequence[WordTiming]) -> list[list[WordTiming]]:
    """Consecutive runs of `words`, in order, together holding every word once.

    A phrase ends at a sentence end or a pause; a run longer than MAX_PHRASE_CHARS is cut at its clause
    punctuation first, and a clause still too long is cut into parts of even length (a single word longer than
    the limit stays whole).
    """
    phrases: list[list[WordTiming]] = []
    for segment in _segments(words, hard=True):
        for piece in _pack(_segments(segment, hard=False)):
            phrases.extend(_balanced(piece))
    return phrases


def _segments(words: Sequence[WordTiming], *, hard: bool) -> list[list[WordTiming]]:
    out: list[list[WordTiming]] = []
    current: list[WordTiming] = []
    for i, word in enumerate(words):
        current.append(word)
        after = words[i + 1] if i + 1 < len(words) else None
        if hard:
            pause = after is not None and after.start - word.end >= PAUSE_BREAK_S
            cut = pause or bool(_SENTENCE_END.search(word.word))
        else:
            cut = bool(_CLAUSE_END.search(word.word))
        if cut:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _pack(clauses: list[list[WordTiming]]) -> list[list[WordTiming]]:
    """Join neighbouring clauses while they fit, so "Hi, I'm Joe." stays one phrase."""
    out: list[list[WordTiming]] = []
    for clause in clauses:
        if out and _chars(out[-1]) + 1 + _chars(clause) <= MAX_PHRASE_CHARS:
            out[-1] = out[-1] + clause
        else:
            out.append(list(clause))
    return out


def _balanced(words: list[WordTiming]) -> list[list[WordTiming]]:
    """Cut into the fewest parts that fit, each about as long as the others (no lone word left at the end)."""
    total = _chars(words)
    if total <= MAX_PHRASE_CHARS or len(words) == 1:
        return [words]
    for parts in range(math.ceil(total / MAX_PHRASE_CHARS), len(words) + 1):
        target = total / parts
        out: list[list[WordTiming]] = [[]]
        for word in words:
            line = out[-1]
            # Start a new part when this word would take the current one further past the target than it is short.
            if line and len(out) < parts and _chars([*line, word]) - target > target - _chars(line):
                out.append([word])
            else:
                line.append(word)
        if all(_chars(p) <= MAX_PHRASE_CHARS or len(p) == 1 for p in out):
            return out
    return [[w] for w in words]


def phrase_windows(phrases: Sequence[Sequence[WordTiming]], until: float | None = None) -> list[tuple[float, float]]:
    """When each phrase is shown: from its first word until the next phrase starts, but at most HOLD_S after its
    last word, and never past `until` (the end of the clip it belongs to)."""
    windows: list[tuple[float, float]] = []
    for i, phrase in enumerate(phrases):
        start, end = phrase[0].start, phrase[-1].end + HOLD_S
        if i + 1 < len(phrases):
            end = min(end, phrases[i + 1][0].start)
        if until is not None:
            end = min(end, until)
        windows.append((start, max(start, end)))
    return windows
