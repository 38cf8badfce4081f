"""A requests-per-minute limit shared by every renderer process, kept in PostgreSQL beside the event store.

The provider's quota is per project, not per process: with K renderers each spacing its own requests, the project
would see K times the rate and meet 429s. So the next free slot lives in one row, `rate_limits(name, next_at)`, and
each acquire is one UPDATE that takes the slot and moves it on by 60 / rpm seconds. The row lock makes concurrent
acquires from any number of processes queue in arrival order, and the database clock (`clock_timestamp()`) is the
only clock, so hosts whose clocks differ still space their requests correctly. A caller then sleeps until its slot
here, holding nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from services.runtime.store.postgres import quote_ident


class SharedRateLimit:
    def __init__(
        self,
        dsn: str,
        schema: str,
        name: str,
        per_minute: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be more than 0")
        self.interval = 60.0 / per_minute
        self._dsn = dsn
        self._name = name
        self._sleep = sleep
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        table = f"{quote_ident(schema)}.rate_limits"
        self._ddl = [
            f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}",
            f"CREATE TABLE IF NOT EXISTS {table} (name text PRIMARY KEY, next_at double precision NOT NULL)",
        ]
        self._sql_row = f"INSERT INTO {table} (name, next_at) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING"
        now = "extract(epoch FROM clock_timestamp())::double precision"
        # Returns how long this caller waits for the slot it took: the old next_at, or now if that has passed.
        self._sql_acquire = (
            f"WITH clock AS (SELECT {now} AS now) UPDATE {table} SET next_at = greatest(next_at, clock.now) + $2"
            " FROM clock WHERE name = $1 RETURNING next_at - $2 - clock.now AS wait"
        )
        self._sql_back_off = (
            f"WITH clock AS (SELECT {now} AS now) UPDATE {table} SET next_at = greatest(next_at, clock.now + $2)"
            " FROM clock WHERE name = $1"
        )

    async def _db(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                pool: asyncpg.Pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=2)
                try:
                    async with pool.acquire() as conn, conn.transaction():
                        # Processes starting together would race on the catalog even with IF NOT EXISTS.
                        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('adagent.rate_limits', 0))")
                        for statement in self._ddl:
                            await conn.execute(statement)
                        await conn.execute(self._sql_row, self._name)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
            return self._pool

    async def acquire(self) -> None:
        """Wait for the next free slot across every process sharing this limit's name."""
        wait = float(await (await self._db()).fetchval(self._sql_acquire, self._name, self.interval))
        if wait > 0:
            await self._sleep(wait)

    async def back_off(self, seconds: float) -> None:
        """The provider said slow down: hold every caller, in every process, back for at least `seconds`."""
        await (await self._db()).execute(self._sql_back_off, self._name, seconds)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
