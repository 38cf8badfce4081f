"""Event store in PostgreSQL, for several runtime processes sharing one store.

Appends to one job are serialised by a transaction-scoped advisory lock on the job, so any number of processes
get gapless sequence numbers without locking the table or retrying on conflicts.
"""

from __future__ import annotations

import asyncpg
import msgspec

from contracts.codec import decode_event, encode
from contracts.events import AnyEvent, JobRequested, RecordedEvent, event_type
from contracts.job_view import PRIORITY_RANK, JobView, apply
from services.runtime.store.pg_pool import open_provisioned_pool, quote_ident
from services.runtime.store.port import DuplicateEvent, IdempotencyConflict
from services.runtime.store.view_fold import ViewFold

_view_decoder = msgspec.json.Decoder(JobView)
_PROVISIONED = "events_by_time"  # the DDL's last index: present only once the whole DDL has run



def _ddl(schema: str) -> list[str]:
    s = quote_ident(schema)
    return [
        # data is bytea so the codec's JSON is kept byte for byte: jsonb would reject \u0000 in user text.
        # recorded_at comes from the database clock so events from different hosts share one clock.
        f"""
        CREATE TABLE IF NOT EXISTS {s}.events (
            position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id    text             NOT NULL UNIQUE,
            job_id      text             NOT NULL,
            seq         bigint           NOT NULL CHECK (seq > 0),
            type        text             NOT NULL,
            version     integer          NOT NULL,
            data        bytea            NOT NULL,
            recorded_at double precision NOT NULL
                DEFAULT extract(epoch FROM clock_timestamp())::double precision,
            UNIQUE (job_id, seq)
        )
        """,
        # job_ids() reads only the first event of each job, newest first.
        f"CREATE INDEX IF NOT EXISTS events_job_starts ON {s}.events (position DESC) WHERE seq = 1",
        f"""
        CREATE OR REPLACE FUNCTION {s}.events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'events are append-only' USING ERRCODE = 'restrict_violation';
        END
        $$
        """,
        # Statement level, so TRUNCATE (which fires no row triggers) is refused as well.
        f"""
        CREATE OR REPLACE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.events
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.events_reject_change()
        """,
        # The job view: a projection of the events, written in the same transaction as each append.
        f"""
        CREATE TABLE IF NOT EXISTS {s}.jobs (
            job_id          text    PRIMARY KEY,
            owner           text    NOT NULL,
            status          text    NOT NULL,
            priority_rank   integer NOT NULL,
            position        bigint  NOT NULL,
            idempotency_key text,
            view            bytea   NOT NULL
        )
        """,
        f"CREATE INDEX IF NOT EXISTS jobs_by_owner ON {s}.jobs (owner, position)",
        f"CREATE INDEX IF NOT EXISTS jobs_by_status ON {s}.jobs (status, priority_rank, position)",
        f"""
        CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON {s}.jobs (owner, idempotency_key)
            WHERE idempotency_key IS NOT NULL
        """,
        # Created last: its presence means the whole DDL ran (see open()). A store made by an earlier version lacks
        # it, so its DDL runs again; every statement above may run twice.
        f"CREATE INDEX IF NOT EXISTS {_PROVISIONED} ON {s}.events (recorded_at)",
    ]


class PostgresEventStore:
    def __init__(self, dsn: str, *, schema: str = "public", pool_size: int = 10) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._dsn = dsn
        self._schema = schema
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        table = f"{quote_ident(schema)}.events"
        self._sql_lock = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
        # ON CONFLICT waits for a concurrent insert of the same event id (possible under another job's lock) to
        # commit, so a lost race becomes "no row returned" instead of an aborted transaction.
        self._sql_insert = (
            f"INSERT INTO {table} (event_id, job_id, seq, type, version, data)"
            f" SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 FROM {table} WHERE job_id = $2"
            " ON CONFLICT (event_id) DO NOTHING"
            " RETURNING seq, recorded_at, position"
        )
        jobs = f"{quote_ident(schema)}.jobs"
        self._sql_view_for_update = f"SELECT view FROM {jobs} WHERE job_id = $1 FOR UPDATE"
        self._sql_view_insert = (
            f"INSERT INTO {jobs} (job_id, owner, status, priority_rank, position, idempotency_key, view)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        self._sql_view_update = f"UPDATE {jobs} SET status = $2, view = $3 WHERE job_id = $1"
        self._sql_view = f"SELECT view FROM {jobs} WHERE job_id = $1"
        self._sql_jobs_first = f"SELECT view FROM {jobs} WHERE owner = $1 ORDER BY position DESC LIMIT $2"
        self._sql_jobs_after = (
            f"SELECT view FROM {jobs} WHERE owner = $1 AND position <"
            f" (SELECT position FROM {jobs} WHERE job_id = $2 AND owner = $1) ORDER BY position DESC LIMIT $3"
        )
        self._sql_queued = f"SELECT view FROM {jobs} WHERE status = 'queued' ORDER BY priority_rank, position"
        self._sql_running = f"SELECT view FROM {jobs} WHERE status = 'running' ORDER BY position"
        self._sql_by_key = f"SELECT view FROM {jobs} WHERE owner = $1 AND idempotency_key = $2"
        self._sql_by_event_id = f"SELECT seq, recorded_at, data FROM {table} WHERE event_id = $1"
        self._sql_history = f"SELECT seq, recorded_at, data FROM {table} WHERE job_id = $1 AND seq > $2 ORDER BY seq"
        self._sql_job_ids = f"SELECT job_id FROM {quote_ident(schema)}.jobs ORDER BY position DESC LIMIT $1"
        self._sql_active_since = f"SELECT DISTINCT job_id FROM {table} WHERE recorded_at >= $1"
        self._sql_lock_events = f"LOCK TABLE {table} IN SHARE MODE"
        self._sql_all_events = f"SELECT position, seq, recorded_at, data FROM {table} ORDER BY position"
        self._sql_views_delete = f"DELETE FROM {jobs}"

    def _lock_key(self, what: str) -> str:
        # Advisory locks are database-wide; naming the schema keeps stores in different schemas from contending.
        return f"adagent.event_store:{self._schema}:{what}"

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._pool = await open_provisioned_pool(
            self._dsn,
            schema=self._schema,
            ddl=_ddl(self._schema),
            provisioned=_PROVISIONED,
            lock_key=self._lock_key("ddl"),
            max_size=self._pool_size,
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("event store is not open")
        return self._pool

    async def append(self, event: AnyEvent) -> RecordedEvent:
        data = encode(event)
        try:
            async with self._db.acquire() as conn, conn.transaction():
                # A separate statement, not part of the INSERT: under READ COMMITTED each statement's snapshot is
                # taken when it starts, so MAX(seq) must be read after the lock is held to see the previous row.
                await conn.execute(self._sql_lock, self._lock_key(f"job:{event.job_id}"))
                row = await conn.fetchrow(
                    self._sql_insert, event.event_id, event.job_id, event_type(event), event.v, data
                )
                if row is None:
                    raise DuplicateEvent(await self._existing(conn, event.event_id))
                seq, at = int(row["seq"]), float(row["recorded_at"])
                await self._project(conn, event, seq, at, int(row["position"]))
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "jobs_idempotency" or not isinstance(event, JobRequested):
                raise
            existing = await self.job_by_idempotency_key(event.owner, event.idempotency_key or "")
            if existing is None:
                raise
            raise IdempotencyConflict(existing) from None
        return RecordedEvent(seq=seq, recorded_at=at, event=event)

    async def _project(self, conn: asyncpg.Connection, event: AnyEvent, seq: int, at: float, position: int) -> None:
        current = await conn.fetchval(self._sql_view_for_update, event.job_id)
        view = apply(_view_decoder.decode(current) if current is not None else None, event, seq, at)
        if view is None:
            return
        if current is None:
            await conn.execute(
                self._sql_view_insert,
                view.job_id,
                view.owner,
                view.status,
                PRIORITY_RANK[view.priority],
                position,
                view.idempotency_key,
                encode(view),
            )
        else:
            await conn.execute(self._sql_view_update, view.job_id, view.status, encode(view))

    async def rebuild_views(self) -> tuple[int, int]:
        async with self._db.acquire() as conn, conn.transaction():
            # SHARE mode stops appends (their INSERT needs ROW EXCLUSIVE) until the commit; reads go on, and see the
            # old views until the new ones are committed.
            await conn.execute(self._sql_lock_events)
            fold = ViewFold()
            async for row in conn.cursor(self._sql_all_events):
                fold.add(decode_event(row["data"]), int(row["seq"]), float(row["recorded_at"]), int(row["position"]))
            views = fold.views()
            await conn.execute(self._sql_views_delete)
            await conn.executemany(
                self._sql_view_insert,
                [
                    (v.job_id, v.owner, v.status, PRIORITY_RANK[v.priority], position, v.idempotency_key, encode(v))
                    for v, position in views
                ],
            )
        return len(views), fold.events

    async def _views(self, sql: str, *args: object) -> list[JobView]:
        rows = await self._db.fetch(sql, *args)
        return [_view_decoder.decode(r["view"]) for r in rows]

    async def job(self, job_id: str) -> JobView | None:
        views = await self._views(self._sql_view, job_id)
        return views[0] if views else None

    async def jobs(self, owner: str, *, after: str | None = None, limit: int = 20) -> list[JobView]:
        if after is None:
            return await self._views(self._sql_jobs_first, owner, limit)
        return await self._views(self._sql_jobs_after, owner, after, limit)

    async def queued_jobs(self) -> list[JobView]:
        return await self._views(self._sql_queued)

    async def running_jobs(self) -> list[JobView]:
        return await self._views(self._sql_running)

    async def job_by_idempotency_key(self, owner: str, key: str) -> JobView | None:
        views = await self._views(self._sql_by_key, owner, key)
        return views[0] if views else None

    async def _existing(self, conn: asyncpg.Connection, event_id: str) -> RecordedEvent:
        row = await conn.fetchrow(self._sql_by_event_id, event_id)
        if row is None:
            # Rows are never deleted, so a conflict on event_id always leaves the original readable.
            raise RuntimeError(f"event {event_id!r} conflicted but cannot be read back")
        return _recorded(row)

    async def history(self, job_id: str, after_seq: int = 0) -> list[RecordedEvent]:
        rows = await self._db.fetch(self._sql_history, job_id, after_seq)
        return [_recorded(row) for row in rows]

    async def job_ids(self, limit: int = 100) -> list[str]:
        rows = await self._db.fetch(self._sql_job_ids, limit)
        return [str(row["job_id"]) for row in rows]

    async def job_ids_active_since(self, since: float) -> list[str]:
        rows = await self._db.fetch(self._sql_active_since, since)
        return [str(row["job_id"]) for row in rows]


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(seq=int(row["seq"]), recorded_at=float(row["recorded_at"]), event=decode_event(row["data"]))


async def drop_schema(dsn: str, schema: str) -> None:
    """Drop the schema and everything in it (the append-only trigger does not stop DROP)."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()
