"""A small disk for tests: a tmpfs mounted on a folder (root only), filled to the last byte on demand and freed again.

Without root the tests that need one are skipped with the reason, except under CI=true, where a skip would hide that
the machine cannot run them: there they fail."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_CHUNKS = (1 << 20, 1 << 12, 1)  # MiB, then pages, then bytes: until not one more byte fits


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / ".filler"

    def fill(self) -> None:
        """Write until the disk refuses another byte."""
        with self._filler.open("ab", buffering=0) as f:
            for size in _CHUNKS:
                block = b"\0" * size
                while True:
                    try:
                        f.write(block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)


@contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[SmallDisk]:
    """A tmpfs of `size_mb` MiB mounted on `path` (created) for the block."""
    reason = "needs root to mount a small tmpfs (mount -t tmpfs)"
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI runs as root")
        pytest.skip(reason)
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        message = f"could not mount a tmpfs on {path}: {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)
