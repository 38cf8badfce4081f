"""Users and API keys, event-sourced in the one stream "accounts" and folded incrementally.

Every call first reads the events appended since the last fold, so a user added by the CLI in another process is
seen by the gateway on its next request, with no cache to invalidate.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contracts.events import (
    AnyEvent,
    ApiKeyCreated,
    ApiKeyRevoked,
    RecordedEvent,
    UserAdded,
    UserPasswordChanged,
    UserRemoved,
)
from services.runtime.store.port import DuplicateEvent, EventStore

STREAM = "accounts"
API_KEY_PREFIX = "adk_"
LOCAL_USER = "local"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 copes with more, but nobody types it and it bounds the work one login can cause

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


class AccountError(ValueError):
    """A request the accounts cannot honour (bad name, unknown user, ...): the message is safe to show."""


class ApiKeyInfo(NamedTuple):
    key_id: str
    label: str
    created_at: float
    revoked: bool


@dataclass
class _User:
    password_hash: str
    webhook_secret: str
    generation: int


@dataclass
class _Key:
    username: str
    sha256: str
    label: str
    created_at: float
    revoked: bool = False


@dataclass
class _Fold:
    last_seq: int = 0
    users: dict[str, _User] = field(default_factory=dict)
    removals: dict[str, int] = field(default_factory=dict)
    keys: dict[str, _Key] = field(default_factory=dict)

    def apply(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, UserAdded):
            if event.username not in self.users:
                generation = self.removals.get(event.username, 0)
                self.users[event.username] = _User(event.password_hash, event.webhook_secret, generation)
        elif isinstance(event, UserPasswordChanged):
            name = _username_of(event)
            if name in self.users:
                self.users[name].password_hash = event.password_hash
        elif isinstance(event, UserRemoved):
            name = _username_of(event)
            if self.users.pop(name, None) is not None:
                self.removals[name] = self.removals.get(name, 0) + 1
                # Revoked here as well as by explicit events, so a crash between the two can never leave a key
                # that would later open a new account of the same name.
                for key in self.keys.values():
                    if key.username == name:
                        key.revoked = True
        elif isinstance(event, ApiKeyCreated):
            # A key created after (in stream order) its user was removed is dead on arrival.
            alive = event.username in self.users
            self.keys.setdefault(
                event.key_id,
                _Key(event.username, event.key_sha256, event.label, recorded.recorded_at, revoked=not alive),
            )
        elif isinstance(event, ApiKeyRevoked):
            if event.key_id in self.keys:
                self.keys[event.key_id].revoked = True
        self.last_seq = recorded.seq


def _user_event_id(name: str, action: str, generation: int) -> str:
    # Deterministic, so two concurrent adds (or removals) of one name collide in the store and only one wins.
    return f"{STREAM}/user/{name}/{action}/{generation}"


def _username_of(event: UserPasswordChanged | UserRemoved) -> str:
    # These events carry no username field: the name is the third part of their id (see _user_event_id).
    return event.event_id.split("/")[2]


def normalize_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise AccountError(
            "a username is 2 to 64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    return name


def _key_digest(plaintext: str) -> str:
    # The secret is 256 random bits, so a fast hash is right: there is nothing to brute-force, and the lookup runs
    # on every request. Passwords, being guessable, get argon2id instead.
    return hashlib.sha256(plaintext.encode()).hexdigest()


class Accounts:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._fold = _Fold()
        self._lock = asyncio.Lock()
        self._dummy_hash: str | None = None
        # Each argon2 hash takes 64 MiB for a moment: a flood of logins queues here instead of exhausting memory.
        self._hashing = asyncio.Semaphore(4)

    async def _refresh(self) -> _Fold:
        async with self._lock:
            for recorded in await self._store.history(STREAM, after_seq=self._fold.last_seq):
                self._fold.apply(recorded)
            return self._fold

    async def _append(self, event: AnyEvent) -> None:
        await self._store.append(event)
        await self._refresh()

    async def add_user(self, username: str, password: str) -> None:
        name = normalize_username(username)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise AccountError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        fold = await self._refresh()
        if name in fold.users:
            raise AccountError(f"user {name!r} already exists")
        generation = fold.removals.get(name, 0)
        async with self._hashing:
            password_hash = await asyncio.to_thread(_hasher.hash, password)
        event = UserAdded(
            event_id=_user_event_id(name, "added", generation),
            job_id=STREAM,
            username=name,
            password_hash=password_hash,
            webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        )
        try:
            await self._append(event)
        except DuplicateEvent:
            await self._refresh()
            raise AccountError(f"user {name!r} already exists") from None

    async def remove_user(self, username: str) -> None:
        name = normalize_username(username)
        fold = await self._refresh()
        user = fold.users.get(name)
        if user is None:
            raise AccountError(f"no user {name!r}")
        for key_id in [k for k, key in fold.keys.items() if key.username == name and not key.revoked]:
            await self._revoke(key_id)
        try:
            await self._append(UserRemoved(event_id=_user_event_id(name, "removed", user.generation), job_id=STREAM))
        except DuplicateEvent:
            await self._refresh()  # removed concurrently by someone else: the outcome asked for holds

    async def list_users(self) -> list[str]:
        return sorted((await self._refresh()).users)

    async def generation(self, username: str) -> int | None:
        """How many times this name was removed before the current account; None if there is no such user."""
        await self._refresh()
        return self.known_generation(username)

    def known_generation(self, username: str) -> int | None:
        """`generation` as of the last read of the stream, without reading it again (for synchronous callers)."""
        user = self._fold.users.get(username)
        return None if user is None else user.generation

    async def authenticate(self, username: str, password: str) -> bool:
        user = (await self._refresh()).users.get(username.strip().lower())
        # Without the user, spend the same argon2 work on a dummy hash, so timing does not reveal which names exist.
        password_hash = await self._dummy() if user is None else user.password_hash
        async with self._hashing:
            ok = await asyncio.to_thread(self._verify, password_hash, password)
        return ok and user is not None

    @staticmethod
    def _verify(password_hash: str, password: str) -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            async with self._hashing:
                self._dummy_hash = await asyncio.to_thread(_hasher.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def create_api_key(self, username: str, label: str = "") -> str:
        """A new key for the user: the plaintext is returned once and never stored."""
        name = normalize_username(username)
        if name not in (await self._refresh()).users:
            raise AccountError(f"no user {name!r}")
        if len(label) > 200:
            raise AccountError("a key label is at most 200 characters")
        key_id = secrets.token_hex(6)
        plaintext = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        await self._append(
            ApiKeyCreated(
                event_id=f"{STREAM}/key/{key_id}/created",
                job_id=STREAM,
                key_id=key_id,
                username=name,
                key_sha256=_key_digest(plaintext),
                label=label,
            )
        )
        return plaintext

    async def revoke_api_key(self, key_id: str) -> None:
        """Revoking an already revoked key is a no-op; an unknown key id is an error."""
        key = (await self._refresh()).keys.get(key_id)
        if key is None:
            raise AccountError(f"no API key {key_id!r}")
        if not key.revoked:
            await self._revoke(key_id)

    async def _revoke(self, key_id: str) -> None:
        try:
            await self._append(ApiKeyRevoked(event_id=f"{STREAM}/key/{key_id}/revoked", job_id=STREAM, key_id=key_id))
        except DuplicateEvent:
            await self._refresh()

    async def list_api_keys(self, username: str) -> list[ApiKeyInfo]:
        name = normalize_username(username)
        fold = await self._refresh()
        if name not in fold.users:
            raise AccountError(f"no user {name!r}")
        return [
            ApiKeyInfo(key_id, key.label, key.created_at, key.revoked)
            for key_id, key in sorted(fold.keys.items(), key=lambda item: item[1].created_at)
            if key.username == name
        ]

    async def user_for_api_key(self, plaintext: str) -> str | None:
        """The key's user, or None for a malformed, unknown or revoked key (or one whose user is gone)."""
        if not plaintext.startswith(API_KEY_PREFIX):
            return None
        key_id, _, secret = plaintext.removeprefix(API_KEY_PREFIX).partition("_")
        if not _KEY_ID.match(key_id) or not secret:
            return None
        fold = await self._refresh()
        key = fold.keys.get(key_id)
        if key is None or not hmac.compare_digest(key.sha256, _key_digest(plaintext)):
            return None
        if key.revoked or key.username not in fold.users:
            return None
        return key.username

    async def webhook_secret(self, username: str) -> str | None:
        user = (await self._refresh()).users.get(username)
        return None if user is None else user.webhook_secret


async def ensure_local_api_key(store: EventStore, label: str = "adagent create") -> str:
    """A fresh API key of the user "local", created with a random password if missing: the embedded CLI's login."""
    accounts = Accounts(store)
    if LOCAL_USER not in await accounts.list_users():
        try:
            await accounts.add_user(LOCAL_USER, secrets.token_urlsafe(32))
        except AccountError:
            pass  # added concurrently by another process: either account will do
    return await accounts.create_api_key(LOCAL_USER, label)
