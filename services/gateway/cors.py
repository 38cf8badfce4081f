"""CORS: lets a page served from another origin call the API from a browser, as the seed's `fetch` example does."""

from __future__ import annotations

from litestar.config.cors import CORSConfig
from litestar.types import Method

from services.runtime.settings import Settings

# What a page sends beyond the CORS-safelisted headers: the credential, a JSON body, the create route's idempotency
# key, and the resume point of an events stream read with `fetch`.
ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"]
# Every HTTP route is a GET or a POST (WebSockets are not subject to CORS).
ALLOW_METHODS: list[Method] = ["GET", "POST"]
# Response headers a page can read only when exposed: the job of a stream, where a created job lives, when to retry
# after a 429, the auth challenge of a 401, and the byte-range answers of /files (for a player reading with fetch).
EXPOSE_HEADERS = [
    "X-Job-Id",
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "Content-Range",
    "Accept-Ranges",
    "Content-Disposition",
]


def cors_config(settings: Settings) -> CORSConfig:
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=list(ALLOW_METHODS),
        allow_headers=list(ALLOW_HEADERS),
        expose_headers=list(EXPOSE_HEADERS),
        # Credentials travel in the Authorization header (a bearer token or an API key), never in cookies, so the
        # browser need not send cookies and `*` stays allowed: with credentials on, browsers refuse a wildcard.
        allow_credentials=False,
    )
