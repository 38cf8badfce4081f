"""Which failures are worth another try, and which were worded for the person who asked for the ad.

A job's `error` reaches the client (SSE `error`, the job status API, webhooks), so only the exceptions below carry a
message meant to be read there; services/runtime/failures.py turns any other exception into a reference an operator
can look up in the logs."""

from __future__ import annotations

import errno
import os
import sqlite3


class UserFacingError(Exception):
    """A failure whose message was written for the client: it says what went wrong in the client's terms and holds
    no server path, tool output or traceback. Raise it (or a subclass) only with such a message."""


class TransientError(UserFacingError):
    """A failure another delivery may not meet (a deadline passed, a provider busy): the handler lets it propagate,
    the bus redelivers, and after the last allowed delivery the job fails with this reason (Runtime.give_up)."""


class ProviderError(UserFacingError):
    """A cloud provider said no for good (a refusal, a rejected request, a failed operation): another try would meet
    the same answer, so the handler ends the job with this message as its `error`."""


class ScriptError(UserFacingError, ValueError):
    """The job's script cannot be turned into clips (no words to speak): the client has to change it."""


# ENOSPC's own wording, as tools that run in a subprocess (ffmpeg) print it in their stderr.
_NO_SPACE_TEXT = os.strerror(errno.ENOSPC)
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


def out_of_disk_space(error: BaseException) -> bool:
    """True when `error`, or an exception it was raised from, says a disk (or a quota on it) is full: ENOSPC or
    EDQUOT from the OS, SQLite's SQLITE_FULL, PostgreSQL's disk_full, or a tool's output that quotes ENOSPC (ffmpeg:
    "No space left on device"). Not worth another try at once, and not the client's fault: see failures.py."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS:
            return True
        if isinstance(current, sqlite3.Error) and getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == _POSTGRES_DISK_FULL:
            return True
        if _NO_SPACE_TEXT in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
