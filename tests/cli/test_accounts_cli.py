"""`adagent users ...` and `adagent keys ...` as an operator runs them, and a server on the same home honouring them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.gateway.accounts import Accounts
from services.gateway.auth import Auth
from services.runtime.context import make_store
from services.runtime.settings import load_settings
from tests.conftest import start_server

PASSWORD = "correct horse battery"


def _adagent(
    home: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={**os.environ, "ADAGENT_HOME": str(home), **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_users_and_keys_made_by_the_cli_are_what_the_server_honours(tmp_path: Path) -> None:
    home = tmp_path / "home"
    added = _adagent(home, "users", "add", "Alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert _adagent(home, "users", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0

    again = _adagent(home, "users", "add", "alice", "--password-stdin", stdin="another password\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    short = _adagent(home, "users", "add", "carol", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "password" in short.stderr
    assert _adagent(home, "users", "list").stdout.splitlines() == ["alice", "bob"]

    created = _adagent(home, "keys", "create", "alice", "--label", "ci")
    assert created.returncode == 0, created.stderr
    revoked_key = created.stdout.strip()
    assert revoked_key.startswith("adk_") and revoked_key not in created.stderr
    key_id = revoked_key.split("_")[1]
    assert _adagent(home, "keys", "revoke", key_id).returncode == 0
    live_key = _adagent(home, "keys", "create", "alice").stdout.strip()

    listing = _adagent(home, "keys", "list", "alice")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()]
    assert [(r[0], r[2], r[3]) for r in rows] == [(key_id, "revoked", "ci"), (live_key.split("_")[1], "active", "")]
    assert revoked_key not in listing.stdout and live_key not in listing.stdout

    unknown = _adagent(home, "keys", "revoke", "0123456789ab")
    assert unknown.returncode == 1 and "no API key" in unknown.stderr

    # Another process, the gateway, on the same home: it logs Alice in and takes her live key only.
    async for server in start_server(home):
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            login = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        auth: Auth = server.stack.app.state.auth
        assert await auth.user_from_bearer(login.json()["access_token"]) == "alice"
        assert await auth.user_from_bearer(live_key) == "alice"
        assert await auth.user_from_bearer(revoked_key) is None

        removed = _adagent(home, "users", "remove", "alice")
        assert removed.returncode == 0, removed.stderr
        # Removed by the CLI while the server runs: the server sees it on the next request.
        assert await auth.user_from_bearer(live_key) is None
        assert await auth.user_from_bearer(login.json()["access_token"]) is None

    store = make_store(load_settings({"ADAGENT_HOME": str(home)}))
    await store.open()
    try:
        accounts = Accounts(store)
        assert await accounts.list_users() == ["ann", "bob"]  # ann: the test server's own user
        assert await accounts.authenticate("bob", PASSWORD)
    finally:
        await store.close()

    missing = _adagent(home, "users", "remove", "alice")
    assert missing.returncode == 1 and "no user" in missing.stderr


def test_misuse_exits_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for args in (["users"], ["keys", "create"], ["users", "add", "dave"]):  # the last: no terminal, no stdin flag
        done = _adagent(home, *args, stdin="")
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_admin_commands_name_the_store_they_used_on_stderr(tmp_path: Path) -> None:
    home = tmp_path / "home"
    added = _adagent(home, "users", "add", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0 and f"event store: SQLite {home}" in added.stderr
    listed = _adagent(home, "users", "list")
    assert listed.stdout == "carol\n"  # stdout stays what scripts read
    assert "event store: SQLite" in listed.stderr
    for command in (("events", "ad_1"), ("rebuild-views",), ("keys", "list", "carol")):
        assert "event store: SQLite" in _adagent(home, *command).stderr


@pytest.mark.postgres
async def test_the_postgres_store_is_named_without_its_password(tmp_path: Path) -> None:
    schema = f"admin_{secrets.token_hex(4)}"
    env = {
        "ADAGENT_STORE": "postgres",
        "ADAGENT_DATABASE_URL": "postgresql://postgres:hunter2secret@127.0.0.1:5432/postgres",
        "ADAGENT_DATABASE_SCHEMA": schema,
    }
    try:
        added = _adagent(tmp_path, "users", "add", "dave", "--password-stdin", stdin=PASSWORD + "\n", env=env)
        assert added.returncode == 0, added.stderr
        assert f"event store: PostgreSQL postgresql://postgres:***@127.0.0.1:5432/postgres (schema {schema})" in (
            added.stderr
        )
        assert "hunter2secret" not in added.stderr + added.stdout
    finally:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
