"""Failed sign-ins are throttled per account and address, per address, and per account (sparing addresses that signed
in before), with 429 and Retry-After; wrong bearer credentials per address. Over real HTTP: the addresses are set with
X-Forwarded-For, which uvicorn takes from a proxy on 127.0.0.1 (its default trusted proxy), as in production behind
one. With ADAGENT_STORE=postgres, two gateways count in one window."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.runtime.settings import SettingsError, load_settings
from services.runtime.store.postgres import drop_schema
from tests.brokers import DATABASE_URL, fresh_namespace
from tests.conftest import Server, start_server

PASSWORD = "ann-password-123"  # tests.conftest.Server.token_for makes user ann with this password
ME = "/api/auth/webhook-secret"  # any route that needs a credential


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login(client: httpx.AsyncClient, address: str, password: str, username: str = "ann") -> httpx.Response:
    return await client.post(
        "/api/auth/login", json={"username": username, "password": password}, headers=_from(address)
    )


def _assert_throttled(response: httpx.Response, reason: str) -> int:
    assert response.status_code == 429, response.text
    assert reason in response.json()["detail"], response.json()
    retry_after = int(response.headers["retry-after"])
    assert f"try again in {retry_after} s" in response.json()["detail"]
    return retry_after


async def test_ten_wrong_passwords_a_second_are_throttled_but_not_the_owner_elsewhere(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answers = [await _login(client, "203.0.113.5", f"wrong guess {n}") for n in range(10)]
        assert [a.status_code for a in answers] == [401] * 5 + [429] * 5
        retry_after = _assert_throttled(answers[-1], "too many failed sign-ins for this account from your address")
        assert 290 <= retry_after <= 300  # the 5-minute window frees a place when the first failure leaves it
        # The right password from the throttled address is refused unchecked; from another address it works.
        _assert_throttled(await _login(client, "203.0.113.5", PASSWORD), "for this account from your address")
        signed_in = await _login(client, "198.51.100.7", PASSWORD)
        assert signed_in.status_code == 200 and signed_in.json()["access_token"]
        # Another account from the throttled address is not held back by this account's window.
        assert (await _login(client, "203.0.113.5", "wrong", username="bob")).status_code == 401


async def test_a_burst_of_parallel_guesses_gets_no_more_than_the_limit(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answers = await asyncio.gather(*(_login(client, "203.0.113.6", f"guess {n}") for n in range(20)))
    assert Counter(a.status_code for a in answers) == {401: 5, 429: 15}


async def test_a_successful_sign_in_empties_its_own_window(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(4):
            assert (await _login(client, "203.0.113.8", "typo")).status_code == 401
        assert (await _login(client, "203.0.113.8", PASSWORD)).status_code == 200
        assert [(await _login(client, "203.0.113.8", "typo")).status_code for _ in range(6)] == [401] * 5 + [429]


@pytest.fixture
async def tight(tmp_path: Path) -> AsyncIterator[Server]:
    """Small address-wide and account-wide limits, so that the tests reach them quickly."""
    async for server in start_server(
        tmp_path / "home",
        login_limit_per_address="4 per minute",
        login_limit_per_account="3 per minute",
        wrong_credential_limit_per_address="3 per minute",
    ):
        yield server


async def test_one_address_spraying_many_accounts_is_throttled(tight: Server) -> None:
    async with httpx.AsyncClient(base_url=tight.url) as client:
        sprayed = [await _login(client, "203.0.113.9", "Summer2025!", username=f"user{n}") for n in range(6)]
        assert [a.status_code for a in sprayed] == [401] * 4 + [429] * 2
        _assert_throttled(sprayed[-1], "too many failed sign-ins from your address")
        assert (await _login(client, "198.51.100.9", PASSWORD)).status_code == 200


async def test_guessing_one_account_from_many_addresses_spares_where_the_owner_signed_in_before(
    tight: Server,
) -> None:
    async with httpx.AsyncClient(base_url=tight.url) as client:
        assert (await _login(client, "198.51.100.1", PASSWORD)).status_code == 200  # the owner's usual address
        bots = [await _login(client, f"203.0.113.{20 + n}", f"guess {n}") for n in range(5)]
        assert [a.status_code for a in bots] == [401] * 3 + [429] * 2
        _assert_throttled(bots[-1], "too many failed sign-ins for this account")
        # A new address waits, even with the right password; the owner's address is not locked out.
        _assert_throttled(await _login(client, "192.0.2.50", PASSWORD), "signed in from before")
        assert (await _login(client, "198.51.100.1", PASSWORD)).status_code == 200
        # Other accounts are not affected.
        assert (await _login(client, "192.0.2.50", "wrong", username="bob")).status_code == 401


async def test_wrong_bearer_credentials_are_throttled_per_address_and_good_ones_never(tight: Server) -> None:
    key = await tight.stack.app.state.auth.accounts.create_api_key("ann")
    wrong = {"Authorization": "Bearer adk_000000000000_notakey", **_from("203.0.113.30")}
    async with httpx.AsyncClient(base_url=tight.url) as client:
        answers = [await client.get(ME, headers=wrong) for _ in range(5)]
        assert [a.status_code for a in answers] == [401] * 3 + [429] * 2
        _assert_throttled(answers[-1], "too many invalid credentials from your address")
        # Wrong stream tokens count too.
        stream = await client.get("/api/ad-agent/jobs/ad_1/events?token=forged", headers=_from("203.0.113.30"))
        assert stream.status_code == 429
        # A valid key from the same address, and a wrong one from another, are answered as ever.
        good = {"Authorization": f"Bearer {key}", **_from("203.0.113.30")}
        assert (await client.get(ME, headers=good)).status_code == 200
        elsewhere = {**wrong, **_from("198.51.100.30")}
        assert (await client.get(ME, headers=elsewhere)).status_code == 401


async def test_an_ipv6_subscriber_cannot_escape_by_rotating_through_its_64(tight: Server) -> None:
    async with httpx.AsyncClient(base_url=tight.url) as client:
        answers = [await _login(client, f"2001:db8:1:2::{n:x}", "guess", username=f"u{n}") for n in range(6)]
    assert [a.status_code for a in answers] == [401] * 4 + [429] * 2


def test_a_limit_that_is_not_a_rate_is_refused_at_start_naming_its_variable() -> None:
    env = {"ADAGENT_HOME": "/tmp/unused", "ADAGENT_LOGIN_LIMIT_PER_ADDRESS": "thirty"}
    with pytest.raises(SettingsError, match="ADAGENT_LOGIN_LIMIT_PER_ADDRESS must be a rate such as"):
        load_settings(env)
    with pytest.raises(SettingsError, match="ADAGENT_LOGIN_LIMIT_PER_ACCOUNT must allow at least 1"):
        load_settings({"ADAGENT_HOME": "/tmp/unused", "ADAGENT_LOGIN_LIMIT_PER_ACCOUNT": "0 per hour"})
    assert load_settings({**env, "ADAGENT_LOGIN_LIMIT_PER_ADDRESS": "3/minute"}).login_limit_per_address == "3/minute"


@pytest.mark.postgres
async def test_two_gateways_sharing_the_store_count_in_one_window(tmp_path: Path) -> None:
    schema = fresh_namespace("throttle")
    shared = {"store": "postgres", "database_url": DATABASE_URL, "database_schema": schema}
    try:
        async for one in start_server(tmp_path / "one", **shared):
            async for other in start_server(tmp_path / "other", **shared):
                async with httpx.AsyncClient() as client:
                    codes = []
                    for n in range(8):  # alternately at each gateway
                        url = (one if n % 2 == 0 else other).url
                        answer = await client.post(
                            f"{url}/api/auth/login",
                            json={"username": "ann", "password": f"guess {n}"},
                            headers=_from("203.0.113.40"),
                        )
                        codes.append(answer.status_code)
                assert codes == [401] * 5 + [429] * 3
    finally:
        await drop_schema(DATABASE_URL, schema)
