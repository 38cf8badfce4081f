"""`GET /api/auth/webhook-secret`: the secret that signs your webhooks, to verify them (Standard Webhooks)."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException

from services.gateway.openapi import (
    BEARER_ONLY,
    RETRY_AFTER,
    UNAUTHORIZED,
    WRONG_CREDENTIALS_THROTTLED,
    WWW_AUTHENTICATE,
    error_example,
    error_response,
    json_response,
    operation_class,
)


class WebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    secret: str  # "whsec_" + base64 key
    scheme: str = "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<HMAC-SHA256>)"


@get(
    "/api/auth/webhook-secret",
    summary="The secret your webhooks are signed with",
    description="Verify each delivery: HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the "
    "base64-decoded secret (after `whsec_`), compared with the `v1,` signature in `webhook-signature`.",
    tags=["Auth"],
    security=BEARER_ONLY,
    responses={
        200: json_response(
            WebhookSecret,
            "Your signing secret",
            secret={
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "scheme": "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<HMAC-SHA256>)",
            },
        ),
        401: UNAUTHORIZED,
        429: WRONG_CREDENTIALS_THROTTLED,
        404: error_response(
            "The user has no webhook secret (e.g. removed meanwhile)",
            error_example(404, "no webhook secret for this user"),
        ),
    },
    operation_class=operation_class(headers={"401": WWW_AUTHENTICATE, "429": RETRY_AFTER}),
)
async def webhook_secret(state: State, user: NamedDependency[str]) -> WebhookSecret:
    secret = await state.auth.accounts.webhook_secret(user)
    if secret is None:
        raise NotFoundException("no webhook secret for this user")
    return WebhookSecret(secret=secret)


ROUTES = [webhook_secret]
