"""Secrets never reach the logs: URL passwords, signatures, tokens and secret-named fields are masked."""

from __future__ import annotations

import logging

import pytest
import structlog

from services.runtime.logging import configure_logging
from tests.logs import logging_restored


def test_secrets_are_masked_in_structlog_and_stdlib_logs(capsys: pytest.CaptureFixture[str]) -> None:
    with logging_restored():  # configure_logging binds the stderr capsys captured, closed after this test
        configure_logging("INFO")
        log = structlog.get_logger("t")
        log.info("connect", url="amqp://guest:hunter2@127.0.0.1:5672/", api_key="sk-live-123", note="ok")
        logging.getLogger("some.library").warning("GET http://h/files/a.mp4?expires=1&signature=abcDEF123 done")
        logging.getLogger("other").warning("token=%s", "tok-999")
    err = capsys.readouterr().err
    for secret in ("hunter2", "sk-live-123", "abcDEF123", "tok-999"):
        assert secret not in err
    assert "amqp://guest:***@127.0.0.1" in err
    assert "signature=***" in err
