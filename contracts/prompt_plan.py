"""What a prompt model is asked to answer for step 1, the JSON Schema it is given (made from these Structs), and the
check that its answer speaks the script word for word.

Word matching: the script and the answer are compared as sequences of words, where a word is a whitespace-separated
token compared after Unicode NFKC normalisation, case folding, typographic quotes made plain and punctuation stripped
from its ends. So a model that changes "Hello," to "hello" or drops a dash between clips still matches, while any word
added, dropped, changed ("colour" for "color", "we are" for "we're") or moved does not. The lines handed on are cut
from the script itself at the model's boundaries, so they keep the author's exact case and punctuation.
"""

from __future__ import annotations

import copy
import difflib
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

MAX_CLIP_SECONDS = 8.0  # Veo makes clips of 4, 6 or 8 seconds


class PlannedClip(msgspec.Struct, frozen=True, kw_only=True):
    line: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            description="The exact words the character speaks in this clip: the next consecutive part of the script, "
            "copied verbatim.",
        ),
    ]
    visual_prompt: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            description="Prompt for an image-to-video model starting from the avatar image: the character exactly as "
            "seen in the image, the setting, the camera (shot, angle, movement), the emotion and delivery.",
        ),
    ]
    duration_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=MAX_CLIP_SECONDS,
            description="How long the clip runs for its line, in seconds (at most 8).",
        ),
    ]


class PromptPlan(msgspec.Struct, frozen=True, kw_only=True):
    clips: Annotated[
        list[PlannedClip],
        msgspec.Meta(min_length=1, description="The clips in script order; their lines together are the whole script."),
    ]


class PlanMismatch(ValueError):
    """The model's answer is not a usable plan for the script; the message says what is wrong, for the model too."""


# Keywords every structured-output back end accepts (Gemini's responseJsonSchema takes a subset of JSON Schema and
# older models reject $ref); anything else msgspec may emit is dropped or translated.
_KEEP = {
    "type",
    "properties",
    "required",
    "items",
    "description",
    "title",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
}


def response_json_schema() -> dict[str, Any]:
    """The JSON Schema of PromptPlan, self-contained: `$defs` inlined, exclusive bounds turned inclusive (decoding
    with msgspec still enforces the exact bounds)."""
    raw = msgspec.json.schema(PromptPlan)
    defs: dict[str, Any] = raw.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return inline(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties":
                out[key] = {name: inline(sub) for name, sub in value.items()}
            elif key == "exclusiveMinimum":
                out.setdefault("minimum", value)
            elif key == "exclusiveMaximum":
                out.setdefault("maximum", value)
            elif key in _KEEP:
                out[key] = inline(value)
        return out

    schema: dict[str, Any] = inline(raw)
    return schema


def decode_plan(text: str) -> PromptPlan:
    body = text.strip()
    if body.startswith("```"):  # a model may fence its JSON even when asked for application/json
        body = body.split("\n", 1)[-1].rsplit("```", 1)[0]
    if not body:
        raise PlanMismatch("the answer was empty")
    try:
        return msgspec.json.decode(body, type=PromptPlan)
    except msgspec.ValidationError as exc:
        raise PlanMismatch(f"the answer does not have the requested shape ({exc})") from None
    except msgspec.DecodeError as exc:
        raise PlanMismatch(f"the answer is not valid JSON ({exc})") from None


@dataclass(frozen=True)
class Word:
    key: str  # what is compared
    text: str  # the original token(s), punctuation-only tokens attached


_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


def _key(token: str) -> str:
    text = unicodedata.normalize("NFKC", token).translate(_PLAIN).casefold()
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith("P"):
        end -= 1
    return text[start:end]


def words(text: str) -> list[Word]:
    out: list[Word] = []
    leading = ""
    for token in text.split():
        key = _key(token)
        if not key:  # a lone dash or ellipsis rides with the word before it
            if out:
                out[-1] = Word(out[-1].key, f"{out[-1].text} {token}")
            else:
                leading += f"{token} "
            continue
        out.append(Word(key, leading + token))
        leading = ""
    return out


def _quote(ws: list[Word], limit: int = 8) -> str:
    shown = " ".join(w.text for w in ws[:limit])
    return f'"{shown}{" ..." if len(ws) > limit else ""}"'


def script_lines(plan: PromptPlan, script: str) -> list[str]:
    """The script cut at the plan's line boundaries, or PlanMismatch naming the first differences."""
    expected = words(script)
    per_clip = [words(clip.line) for clip in plan.clips]
    for i, clip_words in enumerate(per_clip, start=1):
        if not clip_words:
            raise PlanMismatch(f"clip {i} has no words to speak")
    answered = [w for ws in per_clip for w in ws]
    a, b = [w.key for w in expected], [w.key for w in answered]
    if a != b:
        problems: list[str] = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag == "delete":
                problems.append(f"left out {_quote(expected[i1:i2])}")
            elif tag == "insert":
                problems.append(f"added {_quote(answered[j1:j2])}")
            elif tag == "replace":
                problems.append(f"said {_quote(answered[j1:j2])} instead of {_quote(expected[i1:i2])}")
        more = f" (and {len(problems) - 3} more differences)" if len(problems) > 3 else ""
        raise PlanMismatch("the lines are not the script word for word: " + "; ".join(problems[:3]) + more)
    lines: list[str] = []
    position = 0
    for clip_words in per_clip:
        lines.append(" ".join(w.text for w in expected[position : position + len(clip_words)]))
        position += len(clip_words)
    return lines
