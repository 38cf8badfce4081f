"""Event store in one SQLite file, for the embedded default. Writes are serialised by SQLite itself."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from contracts.codec import decode_event, encode
from contracts.events import AnyEvent, RecordedEvent, event_type
from services.runtime.store.port import DuplicateEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT    NOT NULL UNIQUE,
    job_id      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    recorded_at REAL    NOT NULL,
    UNIQUE (job_id, seq)
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""


class SqliteEventStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("event store is not open")
        return self._conn

    async def append(self, event: AnyEvent) -> RecordedEvent:
        async with self._lock:
            return await asyncio.to_thread(self._append, event)

    def _append(self, event: AnyEvent) -> RecordedEvent:
        db = self._db
        data = encode(event)
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT seq, recorded_at, data FROM events WHERE event_id = ?", (event.event_id,)
            ).fetchone()
            if row is not None:
                db.execute("ROLLBACK")
                raise DuplicateEvent(RecordedEvent(seq=row[0], recorded_at=row[1], event=decode_event(row[2])))
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?", (event.job_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO events (event_id, job_id, seq, type, version, data, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event.event_id, event.job_id, seq, event_type(event), event.v, data, now),
            )
            db.execute("COMMIT")
        except DuplicateEvent:
            raise
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return RecordedEvent(seq=seq, recorded_at=now, event=event)

    async def history(self, job_id: str, after_seq: int = 0) -> list[RecordedEvent]:
        async with self._lock:
            rows = await asyncio.to_thread(
                lambda: self._db.execute(
                    "SELECT seq, recorded_at, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
                    (job_id, after_seq),
                ).fetchall()
            )
        return [RecordedEvent(seq=s, recorded_at=t, event=decode_event(d)) for s, t, d in rows]

    async def job_ids(self, limit: int = 100) -> list[str]:
        async with self._lock:
            rows = await asyncio.to_thread(
                lambda: self._db.execute(
                    "SELECT job_id FROM events WHERE seq = 1 ORDER BY position DESC LIMIT ?", (limit,)
                ).fetchall()
            )
        return [r[0] for r in rows]
