"""`GET /api/auth/webhook-secret`: the secret that signs your webhooks, to verify them (Standard Webhooks)."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException


class WebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    secret: str  # "whsec_" + base64 key
    scheme: str = "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<HMAC-SHA256>)"


@get(
    "/api/auth/webhook-secret",
    summary="The secret your webhooks are signed with",
    description="Verify each delivery: HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the "
    "base64-decoded secret (after `whsec_`), compared with the `v1,` signature in `webhook-signature`.",
    tags=["Auth"],
)
async def webhook_secret(state: State, user: NamedDependency[str]) -> WebhookSecret:
    secret = await state.auth.accounts.webhook_secret(user)
    if secret is None:
        raise NotFoundException("no webhook secret for this user")
    return WebhookSecret(secret=secret)


ROUTES = [webhook_secret]
