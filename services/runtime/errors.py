"""Which failures are worth another try, and which were worded for the person who asked for the ad.

A job's `error` reaches the client (SSE `error`, the job status API, webhooks), so only the exceptions below carry a
message meant to be read there; services/runtime/failures.py turns any other exception into a reference an operator
can look up in the logs."""

from __future__ import annotations


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
