"""Split an ad script into spoken lines of at most a clip's length of speech, at natural boundaries.

Sentences are kept whole and packed together while they fit; a sentence too long for one clip is cut at clause
boundaries (commas, semicolons, dashes), and only a clause too long on its own is cut between words, in balanced
parts. Never inside a word.
"""

from __future__ import annotations

import math
import re

MAX_CLIP_SECONDS = 8.0
WORDS_PER_SECOND = 2.5  # about 150 words a minute, a natural advertising read
PAUSE_SECONDS = 0.25  # a breath at a comma or sentence end

_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|\s+(?=[\u2014\u2013-]\s)")


def speech_seconds(text: str) -> float:
    words = len(text.split())
    pauses = len(re.findall(r"[,;:.!?\u2026\u2014\u2013]", text))
    return words / WORDS_PER_SECOND + pauses * PAUSE_SECONDS


def split_script(script: str, max_seconds: float = MAX_CLIP_SECONDS) -> list[str]:
    text = " ".join(script.split())
    if not text:
        return []
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        pieces.extend(_fit(sentence.strip(), max_seconds))
    return _pack([p for p in pieces if p], max_seconds)


def _fit(sentence: str, max_seconds: float) -> list[str]:
    if speech_seconds(sentence) <= max_seconds:
        return [sentence]
    clauses = [c.strip() for c in _CLAUSE_END.split(sentence) if c.strip()]
    if len(clauses) > 1:
        out: list[str] = []
        for clause in _pack(clauses, max_seconds):
            out.extend(_fit_words(clause, max_seconds))
        return out
    return _fit_words(sentence, max_seconds)


def _fit_words(text: str, max_seconds: float) -> list[str]:
    if speech_seconds(text) <= max_seconds:
        return [text]
    words = text.split()
    parts = max(2, math.ceil(speech_seconds(text) / max_seconds))
    while True:
        size = math.ceil(len(words) / parts)
        chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
        if all(speech_seconds(c) <= max_seconds for c in chunks) or size == 1:
            return chunks
        parts += 1


def _pack(pieces: list[str], max_seconds: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if current and speech_seconds(candidate) > max_seconds:
            lines.append(current)
            current = piece
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines
