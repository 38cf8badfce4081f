"""The worker registry in PostgreSQL, beside the event store (same schema), for processes on any number of hosts.

Every time is the database's clock (`clock_timestamp()`), the one the event store stamps `recorded_at` with, so the
sweep compares a row's age with a job's last event on one clock whatever the hosts' clocks say."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import msgspec

from services.runtime.store.pg_pool import open_provisioned_pool, quote_ident
from services.runtime.workers.port import WorkerPresence

_NOW = "extract(epoch FROM clock_timestamp())::double precision"
_jobs = msgspec.json.Decoder(list[str])


class PostgresWorkerRegistry:
    def __init__(self, dsn: str, *, schema: str = "public") -> None:
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None
        s = quote_ident(schema)
        workers, leases = f"{s}.workers", f"{s}.leases"
        self._schema = schema
        self._ddl = [
            f"""
            CREATE TABLE IF NOT EXISTS {workers} (
                worker_id  text             PRIMARY KEY,
                queue      text             NOT NULL,
                capacity   integer          NOT NULL,
                busy       integer          NOT NULL,
                jobs       bytea            NOT NULL,
                renewed_at double precision NOT NULL
            )
            """,
            f"CREATE TABLE IF NOT EXISTS {leases} (name text PRIMARY KEY, holder text NOT NULL,"
            " expires_at double precision NOT NULL)",
        ]
        self._lock_key = f"adagent.workers:{schema}"
        self._sql_now = f"SELECT {_NOW}"
        self._sql_renew = (
            f"INSERT INTO {workers} (worker_id, queue, capacity, busy, jobs, renewed_at)"
            f" VALUES ($1, $2, $3, $4, $5, {_NOW}) ON CONFLICT (worker_id) DO UPDATE SET"
            " queue = excluded.queue, capacity = excluded.capacity, busy = excluded.busy, jobs = excluded.jobs,"
            " renewed_at = excluded.renewed_at"
        )
        self._sql_forget = f"DELETE FROM {workers} WHERE worker_id = $1"
        self._sql_live = (
            f"SELECT worker_id, queue, capacity, busy, jobs, renewed_at FROM {workers} WHERE renewed_at > {_NOW} - $1"
        )
        self._sql_claim = (
            f"INSERT INTO {leases} (name, holder, expires_at) VALUES ($1, $2, {_NOW} + $3)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            f" WHERE {leases}.holder = excluded.holder OR {leases}.expires_at <= {_NOW}"
            " RETURNING holder"
        )
        self._sql_release = f"DELETE FROM {leases} WHERE name = $1 AND holder = $2"
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        async with self._opening:
            if self._pool is None:
                self._pool = await open_provisioned_pool(
                    self._dsn, schema=self._schema, ddl=self._ddl, provisioned="leases", lock_key=self._lock_key,
                    max_size=2,
                )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("worker registry is not open")
        return self._pool

    async def now(self) -> float:
        return float(await self._db.fetchval(self._sql_now))

    async def renew(self, workers: Sequence[WorkerPresence]) -> None:
        await self._db.executemany(
            self._sql_renew,
            [(w.worker_id, w.queue, w.capacity, w.busy, msgspec.json.encode(w.jobs)) for w in workers],
        )

    async def forget(self, worker_ids: Sequence[str]) -> None:
        await self._db.executemany(self._sql_forget, [(w,) for w in worker_ids])

    async def live(self, within: float) -> list[WorkerPresence]:
        rows = await self._db.fetch(self._sql_live, within)
        return [
            WorkerPresence(
                worker_id=r["worker_id"],
                queue=r["queue"],
                capacity=r["capacity"],
                busy=r["busy"],
                jobs=_jobs.decode(r["jobs"]),
                renewed_at=float(r["renewed_at"]),
            )
            for r in rows
        ]

    async def claim(self, name: str, holder: str, seconds: float) -> bool:
        return await self._db.fetchval(self._sql_claim, name, holder, seconds) is not None

    async def release(self, name: str, holder: str) -> None:
        await self._db.execute(self._sql_release, name, holder)
