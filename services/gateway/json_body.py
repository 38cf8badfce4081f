"""Read a JSON request body (or WebSocket message) into a dict: every bad form is a 400 naming what is wrong.

msgspec decodes recursively and stops at Python's recursion limit with a RecursionError, not a DecodeError, so
JSON nested ~1,000 deep used to escape as a 500 (also on the unauthenticated login). Nesting is bounded here well
below that limit, the same for every caller, whatever the stack depth it is called at.
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.gateway.errors import RequestError

# The deepest body the API describes is two levels (`webhook_events`: a list in the object); unknown fields are
# ignored, but still decoded, so the limit leaves them generous room.
MAX_DEPTH = 32


def json_object(body: bytes | str, what: str = "the body") -> dict[str, Any]:
    """`body` decoded, when it is a JSON object nested at most MAX_DEPTH levels; else a RequestError (400)."""
    try:
        raw: Any = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise RequestError(None, f"{what} is not valid JSON ({exc})", 400) from None
    except RecursionError:
        raise RequestError(None, too_deep(what), 400) from None
    if not isinstance(raw, dict):
        raise RequestError(None, f"{what} must be a JSON object", 400)
    if _depth_exceeds(raw, MAX_DEPTH):
        raise RequestError(None, too_deep(what), 400)
    return raw


def too_deep(what: str) -> str:
    return f"{what} nests arrays or objects more than {MAX_DEPTH} levels deep; the limit is {MAX_DEPTH}"


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether `value` nests containers deeper than `limit` (the top level is 1). Iterative: a deep value must not
    exhaust the stack here either."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
