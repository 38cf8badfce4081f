"""What a client is told when a step fails: the one rule for a job's `error` message.

An exception that is a UserFacingError (a provider's refusal, a script with nothing to speak, a retry budget spent:
services/runtime/errors.py) was worded for the client and is shown as it is. Anything else (an FfmpegError with the
end of ffmpeg's stderr, an OSError naming a work folder, a library's own exception) can carry server paths and tool
output, so the client gets "internal error (ref 1a2b3c4d5e6f)" and the logs get the whole exception under that ref.
A full disk (services/runtime/errors.py: out_of_disk_space) is neither the client's doing nor a mystery to look up:
the client is told so in its own words, and the operator gets the exception, at ERROR, to free space.
"""

from __future__ import annotations

import secrets

import structlog

from services.runtime.errors import UserFacingError, out_of_disk_space
from services.runtime.logging import scrub

log = structlog.get_logger(__name__)

_REF_BYTES = 6  # 12 hex digits: short enough to read out, unique enough to grep the logs for
DISK_FULL_REASON = "the server ran out of disk space; try again later"  # a job's `error`, after what failed
DISK_FULL_REQUEST = "the server is out of disk space; try again later"  # a request refused before any job exists


def public_reason(error: BaseException, log_event: str, **context: object) -> str:
    """Log `error` in full as `log_event` (with `context`) and return the reason a client may read."""
    if out_of_disk_space(error):
        log.error(log_event, disk_full=True, exc_info=error, **context)
        return DISK_FULL_REASON
    shown = str(error).strip() if isinstance(error, UserFacingError) else ""
    if shown:
        log.error(log_event, exc_info=error, **context)
        # Provider messages are scrubbed where they are made; this is a second net, as for the logs.
        return scrub(shown)
    ref = secrets.token_hex(_REF_BYTES)
    # exc_info carries the whole exception into the logs: for an FfmpegError, its stderr tail.
    log.error(log_event, ref=ref, exc_info=error, **context)
    return f"internal error (ref {ref})"
