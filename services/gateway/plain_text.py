"""Free-text fields hold text: no control characters (NUL, escape, backspace, the C1 range...), which nobody types
on purpose and which break what the text goes into (a voice, a caption file, a prompt, a PostgreSQL column: a NUL
used to pass validation and fail the job with "internal error"). A script keeps its tabs and line breaks.

The same rule is stated in the OpenAPI document as a pattern (`pattern`), so the two cannot drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache

from services.gateway.errors import RequestError

TABS_AND_LINE_BREAKS = "\t\n\r"
# Unicode's control characters (general category Cc): C0, DEL and C1.
_CONTROL_RANGES = ((0x00, 0x1F), (0x7F, 0x9F))
_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x09: "TAB", 0x0A: "LF", 0x0B: "VT", 0x0C: "FF", 0x0D: "CR"}
_NAMES |= {0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL"}


def _class_body(allowed: str) -> str:
    """The control characters except `allowed`, as the inside of a regex character class (`\\xNN` escapes, which
    Python's `re` and ECMA-262, the dialect of JSON Schema, read alike)."""
    spans: list[tuple[int, int]] = []
    for low, high in _CONTROL_RANGES:
        start = None
        for code in range(low, high + 2):
            inside = code <= high and chr(code) not in allowed
            if inside and start is None:
                start = code
            elif not inside and start is not None:
                spans.append((start, code - 1))
                start = None
    return "".join(f"\\x{a:02x}" if a == b else f"\\x{a:02x}-\\x{b:02x}" for a, b in spans)


def no_control_pattern(allowed: str = "") -> str:
    """A JSON Schema `pattern` matching the strings `check_plain_text(..., allowed=allowed)` accepts."""
    return f"^[^{_class_body(allowed)}]*$"


_FINDERS: dict[str, re.Pattern[str]] = {}


def _finder(allowed: str) -> re.Pattern[str]:
    if allowed not in _FINDERS:
        # Lone surrogates cannot come through the JSON decoder; refused here too, should another way ever bring one.
        _FINDERS[allowed] = re.compile(f"[{_class_body(allowed)}\\ud800-\\udfff]")
    return _FINDERS[allowed]


def check_plain_text(field: str, value: str, *, allowed: str = "") -> None:
    """RequestError (422) naming the first control character of `value` (other than those in `allowed`) and its
    position, counted from 1."""
    found = _finder(allowed).search(value)
    if found is None:
        return
    code = ord(found.group())
    where = f"at position {found.start() + 1}"
    if 0xD800 <= code <= 0xDFFF:
        raise RequestError(field, f"contains a lone surrogate U+{code:04X} {where}: it is not valid Unicode text")
    name = f" ({_NAMES[code]})" if code in _NAMES else ""
    if allowed == TABS_AND_LINE_BREAKS:
        rule = "only tab, newline and carriage return may be used"
    else:
        rule = "control characters, line breaks and tabs included, are not allowed here"
    raise RequestError(field, f"contains a control character U+{code:04X}{name} {where}; {rule}")


def has_words(value: str) -> bool:
    """Whether a voice has something to say: a letter or a digit, in any script (Unicode categories L and N)."""
    return any(ch.isalnum() for ch in value)


def is_space_or_control(ch: str) -> bool:
    """What a URL never holds unescaped: whitespace in any script, and control characters."""
    return ch.isspace() or unicodedata.category(ch) == "Cc"


@cache
def char_class(predicate: Callable[[str], bool]) -> str:
    """Every code point `predicate` holds for, as the inside of a regex character class that Python's `re` and
    ECMA-262 with Unicode (JSON Schema's dialect) read alike: ASCII letters and digits as they are, the rest of the
    Basic Multilingual Plane as `\\uXXXX`, code points beyond it as themselves (neither dialect's escape for those
    is the other's). Computed once per predicate (~0.3 s: every code point is asked)."""
    spans: list[tuple[int, int]] = []
    start = None
    for code in range(0x110001):
        inside = code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF and predicate(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            spans.append((start, code - 1))
            start = None

    def one(code: int) -> str:
        ch = chr(code)
        if ch.isascii() and ch.isalnum():
            return ch
        return f"\\u{code:04X}" if code < 0x10000 else ch

    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in spans)


def no_words_pattern() -> str:
    """A JSON Schema `pattern` matching the strings `has_words` refuses (for a `not`: a schema generator then draws
    text and checks it, rather than drawing from a class of ~130,000 letters and digits)."""
    return f"^[^{char_class(str.isalnum)}]*$"
