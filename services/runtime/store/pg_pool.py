"""A connection pool to a PostgreSQL schema whose tables are created on first use, for every part of the runtime that
keeps state there (the event store, the worker registry, the rate-limit windows)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def open_provisioned_pool(
    dsn: str, *, schema: str, ddl: Sequence[str], provisioned: str, lock_key: str, max_size: int
) -> asyncpg.Pool:
    """A pool on `dsn`, with `ddl` run in `schema` (made if missing) unless the relation `provisioned` is there.

    `provisioned` is the last thing `ddl` creates, all in one transaction, so its presence means set-up is complete;
    skipping the DDL then lets a role without CREATE rights open a schema already provisioned (CREATE SCHEMA IF NOT
    EXISTS checks the right before it looks). Concurrent DDL on the same names can fail on the catalog's unique indexes
    even with IF NOT EXISTS, so processes opening at once take turns under an advisory lock on `lock_key`, which is
    database-wide: name the schema in it."""
    pool: asyncpg.Pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, lock_key)
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{quote_ident(schema)}.{provisioned}"):
                if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema):
                    await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
                for statement in ddl:
                    await conn.execute(statement)
    except BaseException:
        await pool.close()
        raise
    return pool
