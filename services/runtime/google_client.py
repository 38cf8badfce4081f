"""A google-genai Client from the standard Google environment, and how to read the errors it raises.

Two modes, as the SDK has them:
- Gemini Developer API: `GOOGLE_API_KEY` (or `GEMINI_API_KEY`), sent as the `x-goog-api-key` header.
- Vertex AI (`GOOGLE_GENAI_USE_VERTEXAI=true`, or whenever the caller needs it, e.g. Veo): `GOOGLE_CLOUD_PROJECT`,
  `GOOGLE_CLOUD_LOCATION` (default us-central1) and credentials from `GOOGLE_APPLICATION_CREDENTIALS` or application
  default credentials, sent as a Bearer token.

`GOOGLE_GEMINI_BASE_URL` / `GOOGLE_VERTEX_BASE_URL` point the client elsewhere (a proxy, or a fake in tests). The SDK
reads them itself, but only from os.environ; they are read here from the given environment and passed explicitly.
Project, location and credentials are passed explicitly too: with a custom base URL the SDK keeps
`projects/{p}/locations/{l}` in the path and the Bearer token only when project and location are constructor
arguments (google/genai/_api_client.py, 3.6.1).

The SDK's own retries stay off (one attempt): callers retry with their own backoff, so attempts are counted once.
"""

from __future__ import annotations

import importlib
import random
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import google.auth
import google.auth.exceptions
import httpx
from google.auth.credentials import Credentials
from google.genai import Client, errors, types

from services.runtime.credential_errors import (
    GOOGLE_KEY_FILE,
    google_api_refusal,
    google_auth_failure,
    google_credentials_source,
)
from services.runtime.errors import UserFacingError
from services.runtime.settings import SettingsError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_LOCATION = "us-central1"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class GoogleClientConfig:
    vertex: bool
    api_key: str | None = field(default=None, repr=False)
    project: str | None = None
    location: str | None = None
    credentials: Credentials | None = field(default=None, repr=False, compare=False)
    base_url: str | None = None
    credentials_source: str = GOOGLE_KEY_FILE  # what a refusal of the credentials tells the operator to check

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, vertex_required: bool = False, needed_by: str = "google-genai"
    ) -> GoogleClientConfig:
        """`needed_by` starts the error messages, e.g. "ADAGENT_PROMPTER=gemini" or "ADAGENT_RENDERER=veo"."""
        flag = env.get("GOOGLE_GENAI_USE_ENTERPRISE") or env.get("GOOGLE_GENAI_USE_VERTEXAI") or ""
        vertex = vertex_required or flag.strip().lower() in _TRUE
        if not vertex:
            api_key = (env.get("GOOGLE_API_KEY") or env.get("GEMINI_API_KEY") or "").strip()
            if not api_key:
                raise SettingsError(
                    f"{needed_by} needs GOOGLE_API_KEY (or GEMINI_API_KEY) for the Gemini Developer API, or "
                    "GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT for Vertex AI"
                )
            return cls(
                vertex=False,
                api_key=api_key,
                base_url=env.get("GOOGLE_GEMINI_BASE_URL") or None,
                credentials_source="GOOGLE_API_KEY" if env.get("GOOGLE_API_KEY", "").strip() else "GEMINI_API_KEY",
            )
        credentials, adc_project = _load_credentials(env, needed_by)
        project = env.get("GOOGLE_CLOUD_PROJECT") or adc_project
        if not project:
            raise SettingsError(f"{needed_by} on Vertex AI needs GOOGLE_CLOUD_PROJECT")
        return cls(
            vertex=True,
            project=project,
            location=env.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION,
            credentials=credentials,
            base_url=env.get("GOOGLE_VERTEX_BASE_URL") or None,
            credentials_source=google_credentials_source(env),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in a message or a log line."""
        return (self.api_key,) if self.api_key else ()


def _load_credentials(env: Mapping[str, str], needed_by: str) -> tuple[Credentials, str | None]:
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    try:
        if path:
            if not Path(path).is_file():
                raise SettingsError(f"{needed_by} on Vertex AI: GOOGLE_APPLICATION_CREDENTIALS names no file: {path}")
            # The operator's own file, named the ADC way: load it as google.auth.default() does, which silences the
            # warning aimed at credential files accepted from untrusted sources.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                credentials, project = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
                    path, scopes=[CLOUD_PLATFORM_SCOPE]
                )
        else:
            credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.GoogleAuthError as exc:
        where = "GOOGLE_APPLICATION_CREDENTIALS" if path else "application default credentials"
        raise SettingsError(
            f"{needed_by} on Vertex AI needs credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key "
            f"file or provide application default credentials ({where} could not be loaded: {exc})"
        ) from None
    return credentials, project


def make_client(config: GoogleClientConfig, *, timeout_seconds: float | None = None) -> Client:
    http_options = types.HttpOptions(
        base_url=config.base_url,
        retry_options=types.HttpRetryOptions(attempts=1),
        timeout=int(timeout_seconds * 1000) if timeout_seconds else None,
    )
    if config.vertex:
        return Client(
            vertexai=True,
            project=config.project,
            location=config.location,
            credentials=config.credentials,
            http_options=http_options,
        )
    return Client(vertexai=False, api_key=config.api_key, http_options=http_options)


# -- reading errors ----------------------------------------------------------------------------------------------


def _transport_errors() -> tuple[type[BaseException], ...]:
    # google-genai sends through httpx2 (a fork of httpx under its own name) when it is installed, as it is with
    # 3.6.1, else through httpx: their exceptions are unrelated classes, so both are listed.
    found: list[type[BaseException]] = [httpx.TransportError, google.auth.exceptions.TransportError]
    try:
        httpx2 = importlib.import_module("httpx2")
    except ImportError:
        return tuple(found)
    return (*found, httpx2.TransportError)


TRANSPORT_ERRORS = _transport_errors()  # connection refused or dropped, timeouts, a token endpoint unreachable
CALL_ERRORS: tuple[type[BaseException], ...] = (
    errors.APIError,
    google.auth.exceptions.GoogleAuthError,
    *TRANSPORT_ERRORS,
)  # what a google-genai call raises for a failed exchange with Google (the rest are bugs)


def is_retryable(exc: BaseException) -> bool:
    """A failure a later attempt may not meet: 408/429/5xx, a dropped connection or timeout, a token endpoint down."""
    if isinstance(exc, errors.APIError):
        return exc.code in RETRYABLE_STATUS
    return isinstance(exc, TRANSPORT_ERRORS)


def credential_failure(exc: BaseException, provider: str, source: str) -> UserFacingError | None:
    """For a failed google-genai call: the error to raise when it is about the credentials (a token refused at the
    token endpoint, a 401, a 403 PERMISSION_DENIED), else None (services/runtime/credential_errors.py)."""
    if isinstance(exc, errors.APIError):
        return google_api_refusal(provider, exc.code, exc.status, exc.message, source)
    return google_auth_failure(exc, source)


def describe(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """Google's own status and message ("429 RESOURCE_EXHAUSTED: Quota exceeded ..."), never the whole body."""
    if isinstance(exc, errors.APIError):
        text = " ".join(str(part) for part in (exc.code, exc.status) if part)
        if exc.message:
            text = f"{text}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def server_retry_delay(exc: BaseException) -> float | None:
    """The wait Google asks for: a `google.rpc.RetryInfo` detail ("retryDelay": "31s") or a Retry-After header."""
    if not isinstance(exc, errors.APIError):
        return None
    body: Any = exc.details
    details = body.get("error", {}).get("details", []) if isinstance(body, dict) else []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    headers = getattr(exc.response, "headers", None)
    retry_after = headers.get("retry-after") if headers is not None else None
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None  # an HTTP date: rare from Google, fall back to our own backoff


def backoff_delay(attempt: int, *, base: float, cap: float, exc: BaseException | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): exponential with jitter (so workers hit by the same
    429 spread out) up to `cap`, and at least what the server asked for, however long: asking sooner than that is
    refused again (the caller weighs the wait against its own deadline)."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    asked = server_retry_delay(exc) if exc is not None else None
    return max(delay, asked) if asked is not None else delay
