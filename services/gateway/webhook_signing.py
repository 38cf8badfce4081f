"""Standard Webhooks signatures (https://www.standardwebhooks.com): what we send, and how a receiver checks it.

A secret is "whsec_" + base64(key bytes). The signed content is `"{webhook-id}.{webhook-timestamp}.{body}"`, signed
with HMAC-SHA256 under the decoded key, and sent as `webhook-signature: v1,<base64 signature>`. Using the standard
format means a receiver's existing Standard Webhooks library verifies our deliveries unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSecret(ValueError):
    """The secret is not "whsec_" + base64. The message never contains the secret itself."""


def decode_secret(secret: str) -> bytes:
    # The prefix is optional, as in the reference implementations, so a bare base64 key works as well.
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the webhook secret is not valid base64 after the whsec_ prefix") from None
    if not key:
        raise InvalidSecret("the webhook secret is empty")
    return key


def _digest(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    # The body is signed as the exact bytes sent: re-encoding parsed JSON would change them.
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: "v1,<base64 HMAC-SHA256>"."""
    digest = _digest(decode_secret(secret), webhook_id, timestamp, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """All the headers of one delivery attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """True when one of the `webhook-signature` entries matches and the timestamp is within `tolerance` seconds.

    For receivers and tests. Header names are matched case-insensitively; the header may hold several
    space-separated signatures (sent while a secret is being rotated), and any valid one suffices.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook_id = lowered.get("webhook-id")
    raw_timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not webhook_id or not raw_timestamp or not signatures:
        return False
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        return False
    # The timestamp bounds replays of a captured request, in both directions (a clock far ahead is as suspect).
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    try:
        expected = _digest(decode_secret(secret), webhook_id, timestamp, body)
    except InvalidSecret:
        return False
    for entry in signatures.split(" "):
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION or not encoded:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(candidate, expected):
            return True
    return False
