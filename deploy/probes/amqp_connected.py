#!/usr/bin/env python3
"""Exit 0 if this network namespace holds an ESTABLISHED TCP connection to the broker's port, else 1.

A worker (`adagent service prompter|renderer|merger|voice`) serves no HTTP, and checking that its process exists
proves nothing: it is the container's PID 1, so the container is gone when it is. What a stuck worker looks like
instead is a process that is up but no longer connected to RabbitMQ (aio-pika's robust connection keeps retrying,
but a worker that never gets its connection back consumes nothing). The port comes from ADAGENT_AMQP_URL.

Usage: adagent-amqp-connected [/proc/net/tcp ...]   (the files are parameters only for the tests)
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

_ESTABLISHED = "01"


def broker_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (5671 if parts.scheme == "amqps" else 5672)


def connected(port: int, tables: list[str]) -> bool:
    for table in tables:
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == _ESTABLISHED and int(fields[2].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def main(argv: list[str]) -> int:
    port = broker_port(os.environ.get("ADAGENT_AMQP_URL", "amqp://127.0.0.1:5672/"))
    tables = argv or ["/proc/net/tcp", "/proc/net/tcp6"]
    if connected(port, tables):
        return 0
    print(f"no established connection to the broker port {port}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
