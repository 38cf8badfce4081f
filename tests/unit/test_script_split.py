from __future__ import annotations

import re

from services.prompter.script_split import MAX_CLIP_SECONDS, speech_seconds, split_script

LONG = (
    "Tired of dull, tired skin? Meet Glow, the overnight serum that works while you sleep. Packed with vitamin C, "
    "hyaluronic acid and a blend of botanical extracts, it restores your natural radiance, smooths fine lines, and "
    "leaves your skin feeling soft, supple and deeply hydrated from the very first night of use without any "
    "stickiness at all. Wake up radiant. Order today and get twenty percent off your first bottle!"
)


def test_lines_keep_every_word_in_order_and_never_cut_a_word() -> None:
    lines = split_script(LONG)
    assert " ".join(lines).split() == LONG.split()


def test_every_line_fits_a_clip() -> None:
    assert all(speech_seconds(line) <= MAX_CLIP_SECONDS for line in split_script(LONG))


def test_lines_end_at_sentence_or_clause_boundaries_when_possible() -> None:
    for line in split_script(LONG)[:-1]:
        assert re.search(r"[.!?,;:]$", line), line


def test_run_on_sentence_without_punctuation_is_split_between_words() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    lines = split_script(words)
    assert len(lines) >= 3
    assert " ".join(lines) == words


def test_short_script_is_one_clip_and_blank_is_none() -> None:
    assert split_script("  Hello   there. ") == ["Hello there."]
    assert split_script("   ") == []
