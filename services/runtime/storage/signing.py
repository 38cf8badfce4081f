"""HMAC-signed, expiring URLs for objects the gateway serves from local storage."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path


def load_or_create_key(path: Path, env_var: str = "ADAGENT_SIGNING_KEY") -> bytes:
    """`env_var` if set (replicas must share it), else a 0600 key file beside the data, made on first use, so
    signatures survive restarts."""
    env = os.environ.get(env_var)
    if env:
        return env.encode()
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and linked into place, so a process starting at the same moment never reads a half-written key:
    # the link fails if another process won, and then its key is the one to use.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


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
