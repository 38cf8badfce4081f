"""The event store an admin command works on, opened and named on stderr: `adagent users add` without
ADAGENT_STORE=postgres writes a SQLite file, and the one who typed it must see that it did (stdout stays for what
scripts read)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from services.runtime.context import make_store
from services.runtime.settings import Settings, load_settings
from services.runtime.store.port import EventStore


def store_description(settings: Settings) -> str:
    if settings.store == "postgres":
        return f"PostgreSQL {without_password(settings.database_url)} (schema {settings.database_schema})"
    return f"SQLite {settings.sqlite_path}"


def without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def admin_store() -> AsyncIterator[EventStore]:
    settings = load_settings()
    print(f"adagent: event store: {store_description(settings)}", file=sys.stderr)
    store = make_store(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
