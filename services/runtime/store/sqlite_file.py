"""A SQLite database file opened the way every part of the embedded runtime keeps state in one (the event store,
the worker registry): write-ahead log, shared across the event loop's worker threads, its tables made if missing."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect_sqlite(path: Path, schema: str, *, synchronous_normal: bool = False) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Calls run in asyncio.to_thread under the owner's lock: one thread at a time, never the same one.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    if synchronous_normal:
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at each checkpoint, fast at each commit
    conn.executescript(schema)
    return conn
