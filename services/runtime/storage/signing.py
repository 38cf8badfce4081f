"""HMAC-signed, expiring URLs for objects the gateway serves from local storage."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path


def load_or_create_key(path: Path) -> bytes:
    """The signing key lives beside the data, readable by its owner only, so URLs survive restarts."""
    env = os.environ.get("ADAGENT_SIGNING_KEY")
    if env:
        return env.encode()
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class UrlSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, key: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def sign(self, key: str, ttl_seconds: int, now: float | None = None) -> tuple[int, str]:
        expires = int((time.time() if now is None else now) + ttl_seconds)
        return expires, self.signature(key, expires)

    def verify(self, key: str, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (time.time() if now is None else now):
            return False
        # Compared as bytes: `compare_digest` raises TypeError for a str with non-ASCII characters, and the signature
        # comes straight from a URL.
        return hmac.compare_digest(self.signature(key, expires).encode(), signature.encode())
