"""Tests that configure logging put it back: logging is global to the test process, and a logger left writing to a
stream pytest captured for one test raises "I/O operation on closed file" in whichever test logs next."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog


@contextmanager
def logging_restored() -> Iterator[None]:
    """Run the block, then restore structlog's configuration and the root logger's handlers and level."""
    structlog_was = structlog.get_config() if structlog.is_configured() else None
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        if structlog_was is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**structlog_was)
        root.handlers[:] = handlers
        root.setLevel(level)
