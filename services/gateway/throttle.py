"""Throttling of failed authentication: wrong passwords at `POST /api/auth/login`, and wrong bearer credentials.

Failed sign-ins are counted in three moving windows (the `limits` library; kept in PostgreSQL when processes share
the store, see services/runtime/limits_storage.py), as services that face password guessing do:

* per account *and* address, tight (default 5 per 5 minutes): stops guessing one account from one place, and since
  it is keyed by the address too, an attacker filling it locks out no one but themself;
* per address, over every account (default 30 per 5 minutes): stops one address spraying a common password over
  many accounts; loose enough for an office behind one NAT address, since only failures count;
* per account, over every address (default 50 per hour): stops a botnet guessing one account from many addresses.
  A limit that refused everyone would let an attacker lock the owner out from everywhere, so it spares the
  addresses that signed in to that account successfully in the last 30 days: the owner keeps signing in from where
  they did before, while new addresses wait (or the owner uses an API key, which no login limit touches).

A throttled attempt gets 429 with Retry-After before its password is checked, so it learns nothing and costs no
argon2 work. Only failures count, and the check and the count are one step: attempts on one account or from one
address are checked one at a time in each process, so a burst of parallel guesses cannot all pass the check before
any failure is counted (with several gateway processes, each may admit one more in a full window). A successful
sign-in empties its own account-and-address window.

Wrong bearer credentials (an invalid token or API key, on any route) are counted per address too (default 60 per
minute), then answered 429 instead of 401. Keys hold 256 random bits and tokens are signed, so this does not guard
against guessing; it tells a client stuck on a dead credential, or a scanner, to back off, and makes them visible in
the log. It counts failures only: a valid credential never waits for the limiter (no store round trip on the hot
path) and is never refused, so one broken script cannot lock everyone behind its address out of the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NoReturn

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException

from services.runtime.settings import Settings

log = structlog.get_logger(__name__)

TRUSTED_SECONDS = 30 * 24 * 3600  # an address that signed in to an account is spared its account-wide limit so long


@dataclass(frozen=True)
class ThrottleLimits:
    per_account_address: RateLimitItem
    per_address: RateLimitItem
    per_account: RateLimitItem
    wrong_credentials_per_address: RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottleLimits:
        # Checked when the settings were loaded.
        return cls(
            per_account_address=parse(settings.login_limit_per_account_address),
            per_address=parse(settings.login_limit_per_address),
            per_account=parse(settings.login_limit_per_account),
            wrong_credentials_per_address=parse(settings.wrong_credential_limit_per_address),
        )


def client_address(connection: ASGIConnection) -> str:  # type: ignore[type-arg]
    """The caller's address (behind a proxy, what uvicorn took from X-Forwarded-For of a trusted proxy)."""
    return connection.client.host if connection.client else "unknown"


def address_key(host: str) -> str:
    """One key per IPv4 address, and per /64 for IPv6: one subscriber gets a whole /64 and could rotate through it."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def account_key(name: str) -> str:
    # A real name is at most 64 characters (services.gateway.accounts); anything longer names no account, and a
    # hash keeps an arbitrarily long one from becoming an arbitrarily long key.
    return name if len(name) <= 64 else "#" + hashlib.sha256(name.encode()).hexdigest()[:32]


class _KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class LoginAttempt:
    def __init__(self) -> None:
        self.succeeded = False


class AuthThrottle:
    def __init__(self, storage: Storage, limits: ThrottleLimits) -> None:
        self._storage = storage
        self._windows = MovingWindowRateLimiter(storage)
        self._limits = limits
        self._locks = _KeyedLocks()

    @asynccontextmanager
    async def login_attempt(self, account: str, address: str) -> AsyncIterator[LoginAttempt]:
        """429 (TooManyRequestsException) if a window is spent; else yields the attempt: set `succeeded` when the
        password was right. A failure is counted when the block ends (not when it raises: an error is no wrong
        password)."""
        account, address = account_key(account), address_key(address)
        # Always the account's lock first, then the address's: no two attempts can wait on each other in a cycle.
        async with self._locks.hold(f"account:{account}"), self._locks.hold(f"address:{address}"):
            await self._refuse_if_spent(account, address)
            attempt = LoginAttempt()
            yield attempt
            if attempt.succeeded:
                await self._windows.clear(self._limits.per_account_address, "login", account, address)
                trusted = _trusted_key(account, address)
                await self._storage.clear(trusted)  # so the 30 days start again now
                await self._storage.incr(trusted, TRUSTED_SECONDS)
            else:
                await self._windows.hit(self._limits.per_account_address, "login", account, address)
                await self._windows.hit(self._limits.per_address, "login-address", address)
                await self._windows.hit(self._limits.per_account, "login-account", account)

    async def _refuse_if_spent(self, account: str, address: str) -> None:
        limits = self._limits
        if not await self._windows.test(limits.per_account_address, "login", account, address):
            await self._refuse(
                "too many failed sign-ins for this account from your address; try again in {} s",
                limits.per_account_address,
                "login",
                account,
                address,
            )
        if not await self._windows.test(limits.per_address, "login-address", address):
            await self._refuse(
                "too many failed sign-ins from your address; try again in {} s",
                limits.per_address,
                "login-address",
                address,
            )
        if not await self._windows.test(limits.per_account, "login-account", account):
            if await self._storage.get(_trusted_key(account, address)) == 0:
                await self._refuse(
                    "too many failed sign-ins for this account; try again in {} s, or sign in from an address you "
                    "signed in from before, or use an API key",
                    limits.per_account,
                    "login-account",
                    account,
                )

    async def wrong_credential(self, connection: ASGIConnection) -> None:  # type: ignore[type-arg]
        """Count a wrong bearer credential from the caller's address; 429 once it has sent too many."""
        address = address_key(client_address(connection))
        item = self._limits.wrong_credentials_per_address
        if not await self._windows.hit(item, "credentials", address):
            await self._refuse(
                "too many invalid credentials from your address; try again in {} s", item, "credentials", address
            )

    async def _refuse(self, message: str, item: RateLimitItem, *identifiers: str) -> NoReturn:
        stats = await self._windows.get_window_stats(item, *identifiers)
        # The moving window frees a place when its oldest entry leaves it.
        retry_after = min(max(1, math.ceil(stats.reset_time - time.time())), item.get_expiry())
        log.info("auth.throttled", window=item.key_for(*identifiers)[:200], retry_after=retry_after)
        raise TooManyRequestsException(message.format(retry_after), headers={"Retry-After": str(retry_after)})


def _trusted_key(account: str, address: str) -> str:
    return f"adagent/login-trusted/{account}/{address}"
