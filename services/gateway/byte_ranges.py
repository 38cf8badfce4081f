"""HTTP byte ranges (RFC 9110 §14) for downloads: a browser seeking in a video asks for `Range: bytes=START-END`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.I)


class Unsatisfiable(ValueError):
    """The range lies outside the object: answered 416 with `Content-Range: bytes */SIZE`."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range asked for, clipped to the object; None to send the whole object (no header, a syntax this
    does not serve such as several ranges, or a malformed one: RFC 9110 says to ignore those)."""
    if not header:
        return None
    match = _SINGLE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # malformed: ignored
    if start >= size:
        raise Unsatisfiable(header)
    return ByteRange(start, min(int(last) if last else size - 1, size - 1))
