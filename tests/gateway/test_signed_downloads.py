"""Local storage is served under HMAC-signed, expiring URLs: tampered or expired gets 403."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from services.runtime.storage.local import LocalStorage
from tests.conftest import Server


async def _stored(server: Server, tmp_path: Path) -> tuple[LocalStorage, str]:
    storage = server.stack.runtime.storage
    assert isinstance(storage, LocalStorage)
    src = tmp_path / "x.mp4"
    src.write_bytes(b"\x00\x00\x00\x18ftypmp42fake video bytes")
    ref = await storage.put_file("jobs/ad_1/ad_1.mp4", src, "video/mp4")
    return storage, ref


async def test_signed_url_downloads(server: Server, tmp_path: Path) -> None:
    storage, ref = await _stored(server, tmp_path)
    url = await storage.signed_url(ref, 60)
    assert url.startswith(server.url + "/files/jobs/ad_1/ad_1.mp4?expires=")
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content.endswith(b"fake video bytes")


async def test_tampered_or_expired_or_unsigned_urls_are_forbidden(server: Server, tmp_path: Path) -> None:
    storage, ref = await _stored(server, tmp_path)
    url = await storage.signed_url(ref, 60)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    expires, signature = query["expires"][0], query["signature"][0]
    base = f"{server.url}{parts.path}"
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    bad = [
        f"{base}?expires={expires}&signature={flipped}",  # tampered signature
        f"{base}?expires={int(expires) + 3600}&signature={signature}",  # extended expiry
        f"{server.url}/files/jobs/ad_2/ad_1.mp4?expires={expires}&signature={signature}",  # another object
        f"{base}",  # unsigned
    ]
    expired_url = await storage.signed_url(ref, 1)
    exp_expires = int(parse_qs(urlsplit(expired_url).query)["expires"][0])
    sig_then = storage._signer.signature("jobs/ad_1/ad_1.mp4", exp_expires - 10)  # validly signed, in the past
    bad.append(f"{base}?expires={exp_expires - 10}&signature={sig_then}")
    async with httpx.AsyncClient() as client:
        for url_ in bad:
            response = await client.get(url_)
            assert response.status_code == 403, url_
            assert "expired" in response.json()["detail"]
