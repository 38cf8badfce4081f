"""Accounts, login and tokens: passwords only as argon2id, keys only as hashes, and every dead credential refused."""

from __future__ import annotations

import asyncio
import base64
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, WebSocketDisconnect
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from contracts.codec import encode
from services.gateway.accounts import AccountError, Accounts, ensure_local_api_key
from services.gateway.auth import (
    Auth,
    current_user,
    current_user_or_stream_token,
    load_or_create_jwt_secret,
)
from services.gateway.errors import http_error_handler
from services.runtime.store.port import EventStore
from services.runtime.store.sqlite import SqliteEventStore
from tests.brokers import DATABASE_URL, fresh_namespace
from tests.conftest import Server

PASSWORD = "correct horse battery"


@pytest.fixture
async def auth(server: Server) -> Auth:
    auth: Auth = server.stack.app.state.auth
    await auth.accounts.add_user("alice", PASSWORD)
    return auth


async def _login(server: Server, **request: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.post("/api/auth/login", **request)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"json": {"username": "alice", "password": PASSWORD}},
        {"data": {"grant_type": "password", "username": "alice", "password": PASSWORD}},
        {"data": {"username": "Alice", "password": PASSWORD}},  # names are case-insensitive; grant_type optional
    ],
    ids=["json", "oauth2-form", "form-without-grant-type"],
)
async def test_login_gives_a_bearer_token_for_the_user(
    server: Server, auth: Auth, request_kwargs: dict[str, Any]
) -> None:
    response = await _login(server, **request_kwargs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert response.headers["cache-control"] == "no-store"
    assert await auth.user_from_bearer(body["access_token"]) == "alice"
    assert await auth.user_from_bearer(body["access_token"] + "x") is None


@pytest.mark.parametrize(
    "credentials",
    [{"username": "alice", "password": "wrong password"}, {"username": "mallory", "password": PASSWORD}],
    ids=["wrong-password", "unknown-user"],
)
async def test_bad_credentials_are_401(server: Server, auth: Auth, credentials: dict[str, str]) -> None:
    response = await _login(server, json=credentials)
    assert response.status_code == 401
    assert response.json() == {"status_code": 401, "detail": "wrong username or password"}
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field"),
    [
        ({"content": b"{nope", "headers": {"content-type": "application/json"}}, 400, None),
        ({"json": ["alice", PASSWORD]}, 400, None),
        ({"json": {"password": PASSWORD}}, 422, "username"),
        ({"json": {"username": "alice"}}, 422, "password"),
        ({"json": {"username": "alice", "password": 12345678}}, 422, "password"),
        ({"json": {"username": "", "password": PASSWORD}}, 422, "username"),
        ({"data": {"username": "alice"}}, 422, "password"),
        ({"data": {"grant_type": "client_credentials", "username": "alice", "password": PASSWORD}}, 400, "grant_type"),
        ({"content": b"alice:pw", "headers": {"content-type": "text/plain"}}, 415, None),
    ],
    ids=[
        "invalid-json",
        "json-array",
        "no-username",
        "no-password",
        "password-not-a-string",
        "empty-username",
        "form-without-password",
        "other-grant",
        "text-body",
    ],
)
async def test_malformed_login_bodies_are_4xx_naming_the_field(
    server: Server, request_kwargs: dict[str, Any], status: int, field: str | None
) -> None:
    response = await _login(server, **request_kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    assert body.get("field") == field
    if field is not None:
        assert body["detail"].startswith(f"{field}: ")


async def test_api_keys_work_until_revoked_and_are_shown_only_once(auth: Auth) -> None:
    accounts = auth.accounts
    key = await accounts.create_api_key("alice", label="ci")
    prefix, key_id, secret = key.split("_", 2)
    assert prefix == "adk" and len(key_id) == 12 and int(key_id, 16) >= 0 and len(secret) >= 43
    assert await accounts.user_for_api_key(key) == "alice"
    assert await auth.user_from_bearer(key) == "alice"
    for forged in (key[:-1] + ("A" if key[-1] != "A" else "B"), f"adk_{key_id}_", "adk_zzz_abc", "adk_"):
        assert await auth.user_from_bearer(forged) is None

    [listed] = await accounts.list_api_keys("alice")
    assert (listed.key_id, listed.label, listed.revoked) == (key_id, "ci", False) and listed.created_at > 0

    await accounts.revoke_api_key(key_id)
    await accounts.revoke_api_key(key_id)  # idempotent
    assert await auth.user_from_bearer(key) is None
    assert [k.revoked for k in await accounts.list_api_keys("alice")] == [True]
    with pytest.raises(AccountError, match="no API key"):
        await accounts.revoke_api_key("0123456789ab")
    with pytest.raises(AccountError, match="no user"):
        await accounts.create_api_key("nobody")


async def test_an_expired_access_token_is_refused(auth: Auth) -> None:
    token, _ = auth.issue_token("alice", ttl_seconds=-60)
    assert await auth.user_from_bearer(token) is None


async def test_a_removed_users_token_and_keys_are_refused_even_if_the_name_returns(auth: Auth) -> None:
    token, _ = auth.issue_token("alice")
    stream_token = auth.issue_stream_token("alice", "ad_1")
    key = await auth.accounts.create_api_key("alice")

    await auth.accounts.remove_user("alice")
    assert await auth.accounts.list_users() == ["ann"]  # the fixture's user
    assert await auth.user_from_bearer(token) is None
    assert await auth.user_from_bearer(key) is None
    assert await auth.user_from_stream_token(stream_token, "ad_1") is None
    with pytest.raises(AccountError, match="no user"):
        await auth.accounts.remove_user("alice")
    with pytest.raises(AccountError, match="no user"):
        await auth.accounts.list_api_keys("alice")
    with pytest.raises(ValueError, match="no user"):
        auth.issue_token("alice")

    # A new account of the same name is a different account: the old credentials stay dead.
    await auth.accounts.add_user("alice", "another password")
    assert await auth.user_from_bearer(token) is None
    assert await auth.user_from_bearer(key) is None
    assert [k.revoked for k in await auth.accounts.list_api_keys("alice")] == [True]
    new_token, _ = auth.issue_token("alice")
    assert await auth.user_from_bearer(new_token) == "alice"


async def test_a_stream_token_is_good_for_its_job_only(auth: Auth) -> None:
    stream_token = auth.issue_stream_token("alice", "ad_1")
    access_token, _ = auth.issue_token("alice")
    assert await auth.user_from_stream_token(stream_token, "ad_1") == "alice"
    assert await auth.user_from_stream_token(stream_token, "ad_2") is None
    assert await auth.user_from_bearer(stream_token) is None  # it travels in URLs: never a general credential
    assert await auth.user_from_stream_token(access_token, "ad_1") is None
    expired = auth.issue_stream_token("alice", "ad_1", ttl=-60)
    assert await auth.user_from_stream_token(expired, "ad_1") is None


async def test_the_store_holds_argon2id_hashes_and_key_digests_never_the_secrets(server: Server, auth: Auth) -> None:
    key = await auth.accounts.create_api_key("alice")
    history = await server.stack.runtime.store.history("accounts")
    stored = b"".join(encode(r.event) for r in history)
    assert PASSWORD.encode() not in stored
    assert key.encode() not in stored and key.split("_", 2)[2].encode() not in stored
    assert b"$argon2id$" in stored
    assert await auth.accounts.authenticate("alice", PASSWORD)
    assert not await auth.accounts.authenticate("alice", PASSWORD.upper())
    secret = await auth.accounts.webhook_secret("alice")
    assert secret is not None and secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert await auth.accounts.webhook_secret("nobody") is None


async def test_the_jwt_key_file_is_private_and_reused(server: Server, tmp_path: Path) -> None:
    key_file = server.settings.home / "jwt.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_jwt_secret(key_file) == key_file.read_bytes()
    fresh = tmp_path / "new" / "jwt.key"
    assert load_or_create_jwt_secret(fresh) == load_or_create_jwt_secret(fresh)
    assert len(fresh.read_bytes()) == 32


def test_the_jwt_secret_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAGENT_JWT_SECRET", "s" * 40)
    assert load_or_create_jwt_secret(tmp_path / "jwt.key") == b"s" * 40
    assert not (tmp_path / "jwt.key").exists()


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("a", PASSWORD, "username"),
        ("-bob", PASSWORD, "username"),
        ("bob smith", PASSWORD, "username"),
        ("b" * 65, PASSWORD, "username"),
        ("bob", "short", "password"),
        ("alice", PASSWORD, "already exists"),
        ("ALICE", PASSWORD, "already exists"),
    ],
)
async def test_account_rules(auth: Auth, username: str, password: str, message: str) -> None:
    with pytest.raises(AccountError, match=message):
        await auth.accounts.add_user(username, password)


async def test_ensure_local_api_key_adds_the_local_user_once(server: Server) -> None:
    store = server.stack.runtime.store
    first, second = await ensure_local_api_key(store), await ensure_local_api_key(store)
    auth: Auth = server.stack.app.state.auth
    assert first != second
    assert await auth.user_from_bearer(first) == "local" and await auth.user_from_bearer(second) == "local"
    assert await auth.accounts.list_users() == ["ann", "local"]


# Two stores on one database stand for two processes (the gateway and the CLI, or two gateway replicas).

OpenStore = Callable[[], Awaitable[EventStore]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    schema = fresh_namespace("accounts")
    opened: list[EventStore] = []

    async def open_one() -> EventStore:
        store: EventStore
        if request.param == "sqlite":
            store = SqliteEventStore(tmp_path / "events.sqlite3")
        else:
            from services.runtime.store.postgres import PostgresEventStore

            store = PostgresEventStore(DATABASE_URL, schema=schema)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()
    if request.param == "postgres":
        from services.runtime.store.postgres import drop_schema

        await drop_schema(DATABASE_URL, schema)


async def test_each_process_sees_the_others_changes_and_a_name_is_added_once(open_store: OpenStore) -> None:
    one, other = Accounts(await open_store()), Accounts(await open_store())
    outcomes = await asyncio.gather(
        one.add_user("carol", "password one"), other.add_user("carol", "password two"), return_exceptions=True
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], AccountError) and "already exists" in str(errors[0])
    assert await one.list_users() == await other.list_users() == ["carol"]
    assert await one.authenticate("carol", "password one") != await one.authenticate("carol", "password two")

    key = await one.create_api_key("carol")
    assert await other.user_for_api_key(key) == "carol"
    await other.remove_user("carol")
    assert await one.user_for_api_key(key) is None and await one.list_users() == []


# The Litestar dependencies, on a throwaway app holding the server's Auth: what a protected route will see.


@get("/me", dependencies={"user": Provide(current_user)})
async def me(user: NamedDependency[str]) -> dict[str, str]:
    return {"user": user}


@get("/jobs/{job_id:str}/events", dependencies={"user": Provide(current_user_or_stream_token)})
async def events(job_id: FromPath[str], user: NamedDependency[str]) -> dict[str, str]:
    return {"user": user, "job": job_id}


@websocket("/jobs/{job_id:str}/ws", dependencies={"user": Provide(current_user_or_stream_token)})
async def job_socket(socket: WebSocket[Any, Any, Any], user: NamedDependency[str]) -> None:
    await socket.accept()
    await socket.send_json({"user": user})
    await socket.close()


@pytest.fixture
async def client(auth: Auth) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = Litestar(
        route_handlers=[me, events, job_socket],
        state=State({"auth": auth}),
        exception_handlers={HTTPException: http_error_handler},
    )
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def test_current_user_needs_a_valid_bearer_token_or_key(auth: Auth, client: AsyncTestClient[Litestar]) -> None:
    token, _ = auth.issue_token("alice")
    key = await auth.accounts.create_api_key("alice")
    for credential in (token, key):
        response = await client.get("/me", headers={"Authorization": f"Bearer {credential}"})
        assert response.json() == {"user": "alice"}
    expired, _ = auth.issue_token("alice", ttl_seconds=-1)
    stream_token = auth.issue_stream_token("alice", "ad_1")
    for headers in ({}, {"Authorization": f"Basic {token}"}, {"Authorization": f"Bearer {expired}"}):
        response = await client.get("/me", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert response.json()["status_code"] == 401
    assert (await client.get("/me", params={"token": stream_token})).status_code == 401


async def test_job_routes_also_take_a_stream_token_for_that_job(auth: Auth, client: AsyncTestClient[Litestar]) -> None:
    stream_token = auth.issue_stream_token("alice", "ad_1")
    token, _ = auth.issue_token("alice")
    assert (await client.get("/jobs/ad_1/events", params={"token": stream_token})).json()["user"] == "alice"
    assert (await client.get("/jobs/ad_1/events", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    for params in ({"token": stream_token}, {"token": token}, {}):
        response = await client.get("/jobs/ad_2/events", params=params)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"

    with await client.websocket_connect("/jobs/ad_1/ws", params={"token": stream_token}) as ws:
        assert ws.receive_json() == {"user": "alice"}
    with pytest.raises(WebSocketDisconnect):
        with await client.websocket_connect("/jobs/ad_2/ws", params={"token": stream_token}) as ws:
            ws.receive_json()
