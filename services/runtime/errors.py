"""Which failures are worth another try."""

from __future__ import annotations


class TransientError(Exception):
    """A failure another delivery may not meet (a deadline passed, a provider busy): the handler lets it propagate,
    the bus redelivers, and after the last allowed delivery the job fails with this reason (Runtime.give_up)."""
