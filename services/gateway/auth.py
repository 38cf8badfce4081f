"""Who is calling: HS256 access tokens (JWT), API keys, and short-lived per-job stream tokens, as Litestar dependencies.

Tokens carry the account's generation (how often the name was removed before), so a token of a removed user stays
dead even if someone later adds a user of the same name.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import jwt
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath

from services.gateway.accounts import API_KEY_PREFIX, Accounts
from services.gateway.throttle import AuthThrottle, ThrottleLimits
from services.runtime.context import Runtime
from services.runtime.limits_storage import close_limits_storage, limits_storage
from services.runtime.storage.signing import load_or_create_key

ALGORITHM = "HS256"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def load_or_create_jwt_secret(path: Path) -> bytes:
    """ADAGENT_JWT_SECRET if set (every gateway replica must share it), else a 0600 key file beside the data."""
    return load_or_create_key(path, "ADAGENT_JWT_SECRET")


class Auth:
    def __init__(
        self, accounts: Accounts, secret: bytes, throttle: AuthThrottle, token_ttl_seconds: int = 3600
    ) -> None:
        self.accounts = accounts
        self._secret = secret
        self.throttle = throttle
        self.token_ttl_seconds = token_ttl_seconds

    def _generation(self, username: str) -> int:
        # The cached fold, read again by the authentication that precedes any issuing (login, or the request's own
        # bearer check). Stale can only mean an older generation, whose token is then refused: it fails safe.
        generation = self.accounts.known_generation(username)
        if generation is None:
            raise ValueError(f"no user {username!r}")
        return generation

    def _encode(self, claims: dict[str, Any], ttl_seconds: int) -> str:
        now = int(time.time())
        return jwt.encode({**claims, "iat": now, "exp": now + ttl_seconds}, self._secret, algorithm=ALGORITHM)

    def _decode(self, token: str, typ: str) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "iat", "exp", "typ", "gen"]}
            )
        except jwt.PyJWTError:
            return None
        # An access token must not open a stream URL, nor a stream token (which travels in URLs) the whole API.
        if claims.get("typ") != typ or not isinstance(claims.get("sub"), str) or not isinstance(claims["gen"], int):
            return None
        return claims

    async def _live_user(self, claims: dict[str, Any]) -> str | None:
        username: str = claims["sub"]
        return username if await self.accounts.generation(username) == claims["gen"] else None

    def issue_token(self, username: str, ttl_seconds: int | None = None) -> tuple[str, int]:
        """An access token for a user known to exist (ValueError otherwise), and its lifetime in seconds."""
        ttl = self.token_ttl_seconds if ttl_seconds is None else ttl_seconds
        claims = {"sub": username, "typ": "access", "gen": self._generation(username)}
        return self._encode(claims, ttl), ttl

    async def user_from_bearer(self, value: str) -> str | None:
        """The user of an access token or an API key (`adk_...`); None if invalid, expired, revoked or removed."""
        if value.startswith(API_KEY_PREFIX):
            return await self.accounts.user_for_api_key(value)
        claims = self._decode(value, "access")
        return None if claims is None else await self._live_user(claims)

    def issue_stream_token(self, username: str, job_id: str, ttl: int = 3600) -> str:
        """A token for `?token=` on one job's events/WebSocket URL, where browsers cannot send headers."""
        claims = {"sub": username, "typ": "stream", "job": job_id, "gen": self._generation(username)}
        return self._encode(claims, ttl)

    async def user_from_stream_token(self, token: str, job_id: str) -> str | None:
        claims = self._decode(token, "stream")
        if claims is None or claims.get("job") != job_id:
            return None
        return await self._live_user(claims)


def make_auth(rt: Runtime) -> Auth:
    storage = limits_storage(rt.settings)
    rt.closers.append(partial(close_limits_storage, storage))
    throttle = AuthThrottle(storage, ThrottleLimits.from_settings(rt.settings))
    return Auth(Accounts(rt.store), load_or_create_jwt_secret(rt.settings.home / "jwt.key"), throttle)


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def _user_from_header(connection: ASGIConnection[Any, Any, Any, Any], state: State) -> str:
    value = _bearer(connection)
    if value is None:
        raise NotAuthorizedException("authentication required: send Authorization: Bearer <token>", headers=_CHALLENGE)
    user = await state.auth.user_from_bearer(value) if value else None
    if user is None:
        await state.auth.throttle.wrong_credential(connection)  # 429 once this address has sent too many
        raise NotAuthorizedException("the token or API key is invalid or has expired", headers=_CHALLENGE)
    return str(user)


async def _user_from_header_or_query(connection: ASGIConnection[Any, Any, Any, Any], state: State, job_id: str) -> str:
    # Only stream tokens are taken from the query string: URLs end up in logs and browser history, so a credential
    # found there must be short-lived and good for one job only.
    if _bearer(connection) is not None:
        return await _user_from_header(connection, state)
    token = connection.query_params.get("token")
    if not token:
        raise NotAuthorizedException(
            "authentication required: send Authorization: Bearer <token>, or ?token=<stream token>", headers=_CHALLENGE
        )
    user = await state.auth.user_from_stream_token(token, job_id)
    if user is None:
        await state.auth.throttle.wrong_credential(connection)
        raise NotAuthorizedException("the stream token is invalid, expired or for another job", headers=_CHALLENGE)
    return str(user)


async def current_user(request: Request[Any, Any, Any], state: State) -> str:
    """Dependency: the caller's username from `Authorization: Bearer <token or API key>`, else 401."""
    return await _user_from_header(request, state)


async def current_user_or_stream_token(
    request: ASGIConnection[Any, Any, Any, Any], state: State, job_id: FromPath[str]
) -> str:
    """Dependency for a job's events and WebSocket routes: a bearer header, or `?token=<stream token>` for that job.

    Typed as the common base of Request and WebSocket so that Litestar hands it either connection.
    """
    return await _user_from_header_or_query(request, state, job_id)
