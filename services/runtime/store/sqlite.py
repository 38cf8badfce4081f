"""Event store in one SQLite file, for the embedded default. Writes are serialised by SQLite itself."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import msgspec

from contracts.codec import decode_event, encode
from contracts.events import AnyEvent, RecordedEvent, event_type
from contracts.job_view import PRIORITY_RANK, JobView, apply
from services.runtime.store.port import DuplicateEvent, IdempotencyConflict
from services.runtime.store.sqlite_file import connect_sqlite
from services.runtime.store.view_fold import ViewFold

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
CREATE INDEX IF NOT EXISTS events_by_time ON events (recorded_at);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE IF NOT EXISTS jobs (
    job_id          TEXT    PRIMARY KEY,
    owner           TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    priority_rank   INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    idempotency_key TEXT,
    view            BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, position);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, priority_rank, position);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""

_view_decoder = msgspec.json.Decoder(JobView)


class SqliteEventStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._conn = connect_sqlite(self._path, _SCHEMA, synchronous_normal=True)

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
            cursor = db.execute(
                "INSERT INTO events (event_id, job_id, seq, type, version, data, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event.event_id, event.job_id, seq, event_type(event), event.v, data, now),
            )
            self._project(db, event, seq, now, cursor.lastrowid or 0)
            db.execute("COMMIT")
        except (DuplicateEvent, IdempotencyConflict):
            raise
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return RecordedEvent(seq=seq, recorded_at=now, event=event)

    async def rebuild_views(self) -> tuple[int, int]:
        async with self._lock:
            return await asyncio.to_thread(self._rebuild_views)

    def _rebuild_views(self) -> tuple[int, int]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # other processes' appends wait for the write lock until the commit
        try:
            fold = ViewFold()
            for position, seq, at, data in db.execute(
                "SELECT position, seq, recorded_at, data FROM events ORDER BY position"
            ):
                fold.add(decode_event(data), seq, at, position)
            views = fold.views()
            db.execute("DELETE FROM jobs")
            db.executemany(
                "INSERT INTO jobs (job_id, owner, status, priority_rank, position, idempotency_key, view)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (v.job_id, v.owner, v.status, PRIORITY_RANK[v.priority], position, v.idempotency_key, encode(v))
                    for v, position in views
                ],
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return len(views), fold.events

    def _project(self, db: sqlite3.Connection, event: AnyEvent, seq: int, now: float, position: int) -> None:
        row = db.execute("SELECT view FROM jobs WHERE job_id = ?", (event.job_id,)).fetchone()
        view = apply(_view_decoder.decode(row[0]) if row else None, event, seq, now)
        if view is None:
            return
        if row is None:
            try:
                db.execute(
                    "INSERT INTO jobs (job_id, owner, status, priority_rank, position, idempotency_key, view)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        view.job_id,
                        view.owner,
                        view.status,
                        PRIORITY_RANK[view.priority],
                        position,
                        view.idempotency_key,
                        encode(view),
                    ),
                )
            except sqlite3.IntegrityError:
                existing = db.execute(
                    "SELECT view FROM jobs WHERE owner = ? AND idempotency_key = ?", (view.owner, view.idempotency_key)
                ).fetchone()
                db.execute("ROLLBACK")
                if existing is None:
                    raise
                raise IdempotencyConflict(_view_decoder.decode(existing[0])) from None
        else:
            db.execute(
                "UPDATE jobs SET status = ?, view = ? WHERE job_id = ?", (view.status, encode(view), view.job_id)
            )

    async def _views(self, sql: str, *args: object) -> list[JobView]:
        async with self._lock:
            rows = await asyncio.to_thread(lambda: self._db.execute(sql, args).fetchall())
        return [_view_decoder.decode(r[0]) for r in rows]

    async def job(self, job_id: str) -> JobView | None:
        views = await self._views("SELECT view FROM jobs WHERE job_id = ?", job_id)
        return views[0] if views else None

    async def jobs(self, owner: str, *, after: str | None = None, limit: int = 20) -> list[JobView]:
        if after is None:
            return await self._views(
                "SELECT view FROM jobs WHERE owner = ? ORDER BY position DESC LIMIT ?", owner, limit
            )
        return await self._views(
            "SELECT view FROM jobs WHERE owner = ? AND position < "
            "(SELECT position FROM jobs WHERE job_id = ? AND owner = ?) ORDER BY position DESC LIMIT ?",
            owner,
            after,
            owner,
            limit,
        )

    async def queued_jobs(self) -> list[JobView]:
        return await self._views("SELECT view FROM jobs WHERE status = 'queued' ORDER BY priority_rank, position")

    async def running_jobs(self) -> list[JobView]:
        return await self._views("SELECT view FROM jobs WHERE status = 'running' ORDER BY position")

    async def job_by_idempotency_key(self, owner: str, key: str) -> JobView | None:
        views = await self._views("SELECT view FROM jobs WHERE owner = ? AND idempotency_key = ?", owner, key)
        return views[0] if views else None

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
                lambda: self._db.execute("SELECT job_id FROM jobs ORDER BY position DESC LIMIT ?", (limit,)).fetchall()
            )
        return [r[0] for r in rows]

    async def job_ids_active_since(self, since: float) -> list[str]:
        async with self._lock:
            rows = await asyncio.to_thread(
                lambda: self._db.execute(
                    "SELECT DISTINCT job_id FROM events WHERE recorded_at >= ?", (since,)
                ).fetchall()
            )
        return [r[0] for r in rows]
