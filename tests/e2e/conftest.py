"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.cloud import Cloud


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """All four providers' fakes, with the environment every cloud adapter reads pointing at them."""
    c = Cloud(tmp_path, poll_seconds=0.05)
    for name, value in c.env().items():
        monkeypatch.setenv(name, value)
    try:
        yield c
    finally:
        c.stop()
