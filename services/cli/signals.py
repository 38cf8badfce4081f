"""Stopping on SIGINT or SIGTERM, for the long-running commands."""

from __future__ import annotations

import asyncio
import signal


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, from now on. Install it before start-up work, not after: a signal arriving
    while the process starts would otherwise kill it with the default action, half set up and with a non-zero exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
