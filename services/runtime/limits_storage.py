"""Where the `limits` library keeps its counts: in memory for the embedded stack, in PostgreSQL when several
processes share one store (ADAGENT_STORE=postgres), so that every gateway replica or renderer counts in one window.

`limits` has no PostgreSQL storage, so `PostgresLimitsStorage` implements its async storage interface: fixed-window
counters (`incr`/`get`), the moving window (`acquire_entry`/`get_moving_window`: one row per hit) and the sliding
window counter. Each decision that reads and then writes runs in one transaction under an advisory lock on its key,
so concurrent hits from any number of processes never admit more than the limit, and the database clock
(`clock_timestamp()`) is the only clock: hosts whose clocks differ still share one window. Times this storage returns
(`get_expiry`, the window's start) are on that clock, in Unix seconds.

Use it through a `limits.aio.strategies` limiter, e.g. `MovingWindowRateLimiter(limits_storage(settings))`, and
`await close_limits_storage(storage)` when done.
"""

from __future__ import annotations

import asyncio
import time
from math import floor

import asyncpg
from limits.aio.storage import MemoryStorage, MovingWindowSupport, SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow

from services.runtime.settings import Settings
from services.runtime.store.pg_pool import open_provisioned_pool, quote_ident

_NOW = "extract(epoch FROM clock_timestamp())::double precision"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('adagent.limits:' || $1, 0))"
_SWEEP_EVERY_SECONDS = 60.0  # expired rows of keys never hit again are deleted this often, by each process


class PostgresLimitsStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    STORAGE_SCHEME = None  # made from settings (limits_storage below), not from a `limits` storage URI

    def __init__(self, dsn: str, schema: str = "public", *, wrap_exceptions: bool = False) -> None:
        super().__init__(wrap_exceptions=wrap_exceptions)
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._swept_at = 0.0
        s = quote_ident(schema)
        self._counters = f"{s}.limits_counters"
        self._entries = f"{s}.limits_entries"
        self._schema = schema
        self._ddl = [
            f"CREATE TABLE IF NOT EXISTS {self._counters} ("
            " key text PRIMARY KEY, count bigint NOT NULL, expires_at double precision NOT NULL)",
            # The moving window: one row per hit (`amount` of them at once), newest read first.
            f"CREATE TABLE IF NOT EXISTS {self._entries} ("
            " key text NOT NULL, at double precision NOT NULL, amount integer NOT NULL,"
            " expires_at double precision NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS limits_entries_by_key ON {self._entries} (key, at)",
            f"CREATE INDEX IF NOT EXISTS limits_entries_by_expiry ON {self._entries} (expires_at)",
        ]

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

    async def _db(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await open_provisioned_pool(
                    self._dsn, schema=self._schema, ddl=self._ddl, provisioned="limits_entries_by_expiry",
                    lock_key=f"adagent.limits:{self._schema}", max_size=4,
                )
            return self._pool

    async def _sweep(self, conn: asyncpg.Connection) -> None:
        if time.monotonic() - self._swept_at < _SWEEP_EVERY_SECONDS:
            return
        self._swept_at = time.monotonic()
        await conn.execute(f"DELETE FROM {self._entries} WHERE expires_at <= {_NOW}")
        await conn.execute(f"DELETE FROM {self._counters} WHERE expires_at <= {_NOW}")

    # -- fixed window counters ---------------------------------------------------------------------------------

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        # A counter past its expiry starts again from `amount`, with a new expiry: one statement, so it is atomic.
        sql = (
            f"INSERT INTO {self._counters} AS c (key, count, expires_at) VALUES ($1, $3, {_NOW} + $2)"
            f" ON CONFLICT (key) DO UPDATE SET"
            f" count = CASE WHEN c.expires_at <= {_NOW} THEN EXCLUDED.count ELSE c.count + EXCLUDED.count END,"
            f" expires_at = CASE WHEN c.expires_at <= {_NOW} THEN EXCLUDED.expires_at ELSE c.expires_at END"
            " RETURNING count"
        )
        return int(await (await self._db()).fetchval(sql, key, float(expiry), amount))

    async def decr(self, key: str, amount: int = 1) -> int:
        sql = (
            f"UPDATE {self._counters} SET count = greatest(count - $2, 0)"
            f" WHERE key = $1 AND expires_at > {_NOW} RETURNING count"
        )
        return int(await (await self._db()).fetchval(sql, key, amount) or 0)

    async def get(self, key: str) -> int:
        sql = f"SELECT count FROM {self._counters} WHERE key = $1 AND expires_at > {_NOW}"
        return int(await (await self._db()).fetchval(sql, key) or 0)

    async def get_expiry(self, key: str) -> float:
        sql = f"SELECT coalesce(max(expires_at), {_NOW}) FROM {self._counters} WHERE key = $1 AND expires_at > {_NOW}"
        return float(await (await self._db()).fetchval(sql, key))

    # -- moving window -----------------------------------------------------------------------------------------

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        async with (await self._db()).acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, key)
            now = float(await conn.fetchval(f"SELECT {_NOW}"))
            used = await conn.fetchval(
                f"SELECT coalesce(sum(amount), 0) FROM {self._entries} WHERE key = $1 AND at > $2", key, now - expiry
            )
            if int(used) + amount > limit:
                return False
            await conn.execute(
                f"INSERT INTO {self._entries} (key, at, amount, expires_at) VALUES ($1, $2, $3, $4)",
                key,
                now,
                amount,
                now + expiry,
            )
            await conn.execute(f"DELETE FROM {self._entries} WHERE key = $1 AND expires_at <= $2", key, now)
            await self._sweep(conn)
            return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The time of the oldest hit still in the window (the window frees a place `expiry` after it; now if the
        window is empty) and how many hits the window holds."""
        row = await (await self._db()).fetchrow(
            f"WITH clock AS (SELECT {_NOW} AS now)"
            f" SELECT coalesce(min(e.at), clock.now) AS start, coalesce(sum(e.amount), 0) AS used"
            f" FROM clock LEFT JOIN {self._entries} e ON e.key = $1 AND e.at > clock.now - $2 GROUP BY clock.now",
            key,
            float(expiry),
        )
        assert row is not None
        return float(row["start"]), int(row["used"])

    # -- sliding window counter --------------------------------------------------------------------------------

    async def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        async with (await self._db()).acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, key)
            now = float(await conn.fetchval(f"SELECT {_NOW}"))
            previous, previous_ttl, current, _ = await self._sliding_window(conn, key, expiry, now)
            if floor(previous * previous_ttl / expiry + current) + amount > limit:
                return False
            _, current_key = self.sliding_window_keys(key, expiry, now)
            # The current window's counter outlives it by one window: it is the next one's "previous".
            await conn.execute(
                f"INSERT INTO {self._counters} AS c (key, count, expires_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (key) DO UPDATE SET count = c.count + EXCLUDED.count",
                current_key,
                amount,
                now + 2 * expiry,
            )
            await self._sweep(conn)
            return True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        async with (await self._db()).acquire() as conn:
            now = float(await conn.fetchval(f"SELECT {_NOW}"))
            return await self._sliding_window(conn, key, expiry, now)

    async def _sliding_window(
        self, conn: asyncpg.Connection, key: str, expiry: int, now: float
    ) -> tuple[int, float, int, float]:
        """(previous window's count, its time left, current window's count, its time left), as `limits` computes
        them for its own storages."""
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        rows = await conn.fetch(
            f"SELECT key, count FROM {self._counters} WHERE key = ANY($1::text[]) AND expires_at > $2",
            [previous_key, current_key],
            now,
        )
        counts = {row["key"]: int(row["count"]) for row in rows}
        previous, current = counts.get(previous_key, 0), counts.get(current_key, 0)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        now = float(await (await self._db()).fetchval(f"SELECT {_NOW}"))
        for window_key in self.sliding_window_keys(key, expiry, now):
            await self.clear(window_key)

    # -- housekeeping ------------------------------------------------------------------------------------------

    async def clear(self, key: str) -> None:
        async with (await self._db()).acquire() as conn, conn.transaction():
            await conn.execute(f"DELETE FROM {self._counters} WHERE key = $1", key)
            await conn.execute(f"DELETE FROM {self._entries} WHERE key = $1", key)

    async def reset(self) -> int | None:
        async with (await self._db()).acquire() as conn, conn.transaction():
            counters = await conn.fetchval(
                f"WITH d AS (DELETE FROM {self._counters} RETURNING 1) SELECT count(*) FROM d"
            )
            entries = await conn.fetchval(
                f"WITH d AS (DELETE FROM {self._entries} RETURNING key) SELECT count(DISTINCT key) FROM d"
            )
            return int(counters) + int(entries)

    async def check(self) -> bool:
        try:
            return bool(await (await self._db()).fetchval("SELECT true"))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            return False

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def limits_storage(settings: Settings) -> Storage:
    """PostgreSQL (the store's database and schema) when processes share the store, else this process's memory."""
    if settings.store == "postgres":
        return PostgresLimitsStorage(settings.database_url, settings.database_schema)
    return MemoryStorage()


async def close_limits_storage(storage: Storage) -> None:
    if isinstance(storage, PostgresLimitsStorage):
        await storage.close()
