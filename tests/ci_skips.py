"""Under CI every test must run: a test skipped there (no Chromium, no rabbitmqctl, no Debian ffmpeg) means a machine
that lacks what `make test` should have brought, and the run fails rather than passing on less than it claims."""

from __future__ import annotations

import os
from typing import Any

import pytest

_skipped_in_ci: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and os.environ.get("CI", "").lower() == "true":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_in_ci.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_in_ci:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped_in_ci:
        terminalreporter.section("skipped under CI=true (each one fails the run)")
        for line in _skipped_in_ci:
            terminalreporter.write_line(line)
