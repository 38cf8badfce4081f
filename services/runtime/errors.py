"""Which failures are worth another try."""

from __future__ import annotations


class TransientError(Exception):
    """A failure another delivery may not meet (a deadline passed, a provider busy): the handler lets it propagate,
    the bus redelivers, and after the last allowed delivery the job fails with this reason (Runtime.give_up)."""


class ProviderError(Exception):
    """A cloud provider said no for good (a refusal, a rejected request, a failed operation): another try would meet
    the same answer, so the handler ends the job with this message as its `error`."""
