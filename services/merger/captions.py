"""WebVTT captions of the whole ad: the same phrases, at the same moments, as the captions burned into the picture."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.events import WordTiming
from services.runtime.phrases import group_phrases, phrase_windows


def _timestamp(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _escape(text: str) -> str:
    # "&" and "<" start entities and tags in cue text; ">" too, so "-->" can never appear in it.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_vtt(clips: Sequence[tuple[float, float, Sequence[WordTiming]]]) -> str:
    """A WebVTT file from each clip's start in the merged video and its length (seconds), and its words (timed from
    the clip's start). Phrases never cross a clip boundary: a clip's last phrase goes when the clip ends, so the
    ad's last cue ends with the ad."""
    out = ["WEBVTT", ""]
    number = 0
    for offset, length, words in clips:
        phrases = group_phrases(words)
        for phrase, (start, end) in zip(phrases, phrase_windows(phrases, length), strict=True):
            if end <= start:
                continue
            number += 1
            text = _escape(" ".join(w.word for w in phrase))
            out += [str(number), f"{_timestamp(offset + start)} --> {_timestamp(offset + end)}", text, ""]
    return "\n".join(out)
