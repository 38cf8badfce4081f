"""Every setting comes from the environment (ADAGENT_*), validated once at start with a clear message."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec
from limits import RateLimitItem
from limits import parse as parse_limit


class SettingsError(ValueError):
    pass


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    home: Path
    bus: Literal["memory", "rabbitmq"] = "memory"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_namespace: str = "adagent"
    store: Literal["sqlite", "postgres"] = "sqlite"
    # Providers, per step: each cloud one reads its own settings and credentials from the environment at start.
    prompter: Literal["local", "gemini"] = "local"
    renderer: Literal["local", "veo"] = "local"
    voice: Literal["local", "elevenlabs"] = "local"
    storage: Literal["local", "gcs"] = "local"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_schema: str = "public"
    public_url: str = "http://127.0.0.1:8001"
    render_concurrency: int = 2
    url_ttl_seconds: int = 24 * 3600
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_script_chars: int = 5000
    max_running_jobs: int = 2
    max_running_per_user: int = 2
    max_queued_per_user: int = 20
    sse_keepalive_seconds: float = 15.0
    clip_deadline_seconds: float = 900.0  # a clip render taking longer is abandoned and retried
    merge_lease_seconds: float = 120.0  # a merge claimed this long ago and not finished is taken over
    # A worker renews its hold on the jobs it handles every third of this; a running job that no live worker holds
    # (or waits for) and that recorded nothing for this long is failed by the scheduler's sweep (every half of it).
    worker_lease_seconds: float = 60.0
    shutdown_grace_seconds: float = 30.0  # on SIGTERM, how long in-flight handlers may finish before cancellation
    webhook_delays: tuple[float, ...] = (5, 10, 20, 40, 80, 160, 320)  # seconds between attempts: >= 10 min in all
    # Webhooks go to public addresses only (no SSRF into the deployment); true lets them reach private, loopback
    # and link-local ones too, for a receiver inside the network or on this machine (development, tests).
    webhook_allow_private: bool = False
    # Origins whose pages may call the API from a browser (CORS): `*` for any, or e.g. `https://app.example`.
    cors_origins: tuple[str, ...] = ("*",)
    # Failed sign-ins allowed in a moving window (`limits` notation: "5 per 5 minutes"), then 429 with Retry-After:
    # per account from one address, per address over all accounts, and per account over all addresses (which
    # spares addresses that signed in to the account before: see services/gateway/throttle.py).
    login_limit_per_account_address: str = "5 per 5 minutes"
    login_limit_per_address: str = "30 per 5 minutes"
    login_limit_per_account: str = "50 per hour"
    # Wrong bearer credentials (tokens, API keys) one address may send before they are answered 429.
    wrong_credential_limit_per_address: str = "60 per minute"

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "events.sqlite3"


_ENV: dict[str, str] = {
    "bus": "ADAGENT_BUS",
    "amqp_url": "ADAGENT_AMQP_URL",
    "amqp_namespace": "ADAGENT_AMQP_NAMESPACE",
    "store": "ADAGENT_STORE",
    "prompter": "ADAGENT_PROMPTER",
    "renderer": "ADAGENT_RENDERER",
    "voice": "ADAGENT_VOICE",
    "storage": "ADAGENT_STORAGE",
    "database_url": "ADAGENT_DATABASE_URL",
    "database_schema": "ADAGENT_DATABASE_SCHEMA",
    "public_url": "ADAGENT_PUBLIC_URL",
    "render_concurrency": "ADAGENT_RENDER_CONCURRENCY",
    "url_ttl_seconds": "ADAGENT_URL_TTL_SECONDS",
    "max_image_bytes": "ADAGENT_MAX_IMAGE_BYTES",
    "max_image_pixels": "ADAGENT_MAX_IMAGE_PIXELS",
    "max_script_chars": "ADAGENT_MAX_SCRIPT_CHARS",
    "max_running_jobs": "ADAGENT_MAX_RUNNING_JOBS",
    "max_running_per_user": "ADAGENT_MAX_RUNNING_PER_USER",
    "max_queued_per_user": "ADAGENT_MAX_QUEUED_PER_USER",
    "sse_keepalive_seconds": "ADAGENT_SSE_KEEPALIVE_SECONDS",
    "shutdown_grace_seconds": "ADAGENT_SHUTDOWN_GRACE_SECONDS",
    "clip_deadline_seconds": "ADAGENT_CLIP_DEADLINE_SECONDS",
    "merge_lease_seconds": "ADAGENT_MERGE_LEASE_SECONDS",
    "worker_lease_seconds": "ADAGENT_WORKER_LEASE_SECONDS",
    "webhook_allow_private": "ADAGENT_WEBHOOK_ALLOW_PRIVATE",
    "cors_origins": "ADAGENT_CORS_ORIGINS",
    "login_limit_per_account_address": "ADAGENT_LOGIN_LIMIT_PER_ACCOUNT_ADDRESS",
    "login_limit_per_address": "ADAGENT_LOGIN_LIMIT_PER_ADDRESS",
    "login_limit_per_account": "ADAGENT_LOGIN_LIMIT_PER_ACCOUNT",
    "wrong_credential_limit_per_address": "ADAGENT_WRONG_CREDENTIAL_LIMIT_PER_ADDRESS",
}
_RATE_LIMIT_FIELDS = (
    "login_limit_per_account_address",
    "login_limit_per_address",
    "login_limit_per_account",
    "wrong_credential_limit_per_address",
)

_INT_FIELDS = {
    "render_concurrency",
    "url_ttl_seconds",
    "max_image_bytes",
    "max_image_pixels",
    "max_script_chars",
    "max_running_jobs",
    "max_running_per_user",
    "max_queued_per_user",
}


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    env = os.environ if env is None else env
    raw: dict[str, object] = {"home": Path(env.get("ADAGENT_HOME") or Path.home() / ".adagent").expanduser()}
    for field, var in _ENV.items():
        value = env.get(var)
        if value is None or value == "":
            continue
        if field in _INT_FIELDS:
            try:
                raw[field] = int(value)
            except ValueError:
                raise SettingsError(f"{var} must be a whole number, got {value!r}") from None
        elif field == "cors_origins":
            raw[field] = _origins(var, value)
        else:
            raw[field] = value
    delays = env.get("ADAGENT_WEBHOOK_DELAYS")
    if delays:
        try:
            raw["webhook_delays"] = tuple(float(d) for d in delays.split(","))
        except ValueError:
            raise SettingsError(f"ADAGENT_WEBHOOK_DELAYS must be seconds separated by commas, got {delays!r}") from None
    allow_private = env.get("ADAGENT_WEBHOOK_ALLOW_PRIVATE", "").strip()
    if allow_private and allow_private.lower() not in ("true", "false", "1", "0"):
        raise SettingsError(f"ADAGENT_WEBHOOK_ALLOW_PRIVATE must be true or false, got {allow_private!r}")
    raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(str(exc))) from None
    for field in ("render_concurrency", "max_running_jobs", "max_running_per_user", "max_queued_per_user"):
        if getattr(settings, field) < 1:
            raise SettingsError(f"{_ENV[field]} must be at least 1")
    if settings.merge_lease_seconds <= 0:
        raise SettingsError("ADAGENT_MERGE_LEASE_SECONDS must be more than 0")
    if settings.worker_lease_seconds <= 0:
        raise SettingsError("ADAGENT_WORKER_LEASE_SECONDS must be more than 0")
    if settings.clip_deadline_seconds <= 0:
        raise SettingsError("ADAGENT_CLIP_DEADLINE_SECONDS must be more than 0")
    if settings.shutdown_grace_seconds < 0:
        raise SettingsError("ADAGENT_SHUTDOWN_GRACE_SECONDS must be zero or more")
    if not 1 <= settings.url_ttl_seconds <= 7 * 24 * 3600:
        raise SettingsError("ADAGENT_URL_TTL_SECONDS must be between 1 and 604800 (7 days)")
    for field in _RATE_LIMIT_FIELDS:
        rate_limit(_ENV[field], getattr(settings, field))
    return settings


def rate_limit(var: str, value: str) -> RateLimitItem:
    """A rate in `limits` notation ("5 per 5 minutes", "60/minute"), at least 1 per period."""
    try:
        item = parse_limit(value)
    except ValueError:
        raise SettingsError(f"{var} must be a rate such as '5 per 5 minutes' or '60/minute', got {value!r}") from None
    if item.amount < 1:
        raise SettingsError(f"{var} must allow at least 1, got {value!r}")
    return item


# scheme://host[:port], `*` allowed as a wildcard in the host (Litestar's CORSConfig matches it so).
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s,]+")


def _origins(var: str, value: str) -> tuple[str, ...]:
    """Comma-separated origins as a browser sends them in `Origin`: `scheme://host[:port]`, nothing after. A
    trailing slash or a path would never match any request, so it is refused here rather than silently ignored."""
    # Lower case: browsers serialise `Origin` so, and the match is exact.
    origins = tuple(origin.strip().lower() for origin in value.split(","))
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise SettingsError(
                f"{var} must be * or origins such as https://app.example separated by commas (no path, no "
                f"trailing slash), got {origin!r}"
            )
    return origins


def env_int(env: Mapping[str, str], var: str, default: int, *, minimum: int | None = None) -> int:
    """A whole number from `var` (the default when unset or blank), checked, with the variable named on error: for
    the providers' own settings, read outside the Settings struct."""
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{var} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{var} must be at least {minimum}, got {value}")
    return value


def env_float(env: Mapping[str, str], var: str, default: float) -> float:
    """A number more than 0 from `var` (the default when unset or blank): a rate, a number of seconds."""
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{var} must be a number, got {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"{var} must be more than 0")
    return value


def _explain(message: str) -> str:
    # msgspec says "... - at `$.bus`"; name the environment variable the operator has to fix instead.
    for field, var in _ENV.items():
        if f"`$.{field}`" in message:
            return f"{var}: {message.split(' - at ')[0]}"
    return message
