"""The worker registry in the embedded SQLite file, beside the events (its own connection, its own tables)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from services.runtime.store.sqlite_file import connect_sqlite
from services.runtime.workers.port import WorkerPresence

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workers (
    worker_id  TEXT    PRIMARY KEY,
    queue      TEXT    NOT NULL,
    capacity   INTEGER NOT NULL,
    busy       INTEGER NOT NULL,
    jobs       BLOB    NOT NULL,
    renewed_at REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

_jobs = msgspec.json.Decoder(list[str])


class SqliteWorkerRegistry:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._conn = connect_sqlite(self._path, _SCHEMA)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("worker registry is not open")
        return self._conn

    async def _run(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        async with self._lock:
            await asyncio.to_thread(self._db.executemany, sql, rows)

    async def now(self) -> float:
        return time.time()  # one host: the clock the SQLite event store stamps with

    async def renew(self, workers: Sequence[WorkerPresence]) -> None:
        now = time.time()
        await self._run(
            "INSERT OR REPLACE INTO workers (worker_id, queue, capacity, busy, jobs, renewed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(w.worker_id, w.queue, w.capacity, w.busy, msgspec.json.encode(w.jobs), now) for w in workers],
        )

    async def forget(self, worker_ids: Sequence[str]) -> None:
        await self._run("DELETE FROM workers WHERE worker_id = ?", [(w,) for w in worker_ids])

    async def live(self, within: float) -> list[WorkerPresence]:
        since = time.time() - within
        async with self._lock:
            rows = await asyncio.to_thread(
                lambda: self._db.execute(
                    "SELECT worker_id, queue, capacity, busy, jobs, renewed_at FROM workers WHERE renewed_at > ?",
                    (since,),
                ).fetchall()
            )
        return [
            WorkerPresence(worker_id=w, queue=q, capacity=c, busy=b, jobs=_jobs.decode(j), renewed_at=at)
            for w, q, c, b, j, at in rows
        ]

    async def claim(self, name: str, holder: str, seconds: float) -> bool:
        now = time.time()
        async with self._lock:
            # fetchall, not fetchone: the statement (and its implicit transaction) ends only once stepped to the end.
            rows = await asyncio.to_thread(
                lambda: self._db.execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                    " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?"
                    " RETURNING holder",
                    (name, holder, now + seconds, now),
                ).fetchall()
            )
        return bool(rows)

    async def release(self, name: str, holder: str) -> None:
        await self._run("DELETE FROM leases WHERE name = ? AND holder = ?", [(name, holder)])
