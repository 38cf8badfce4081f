"""Local storage is served under HMAC-signed, expiring URLs: tampered or expired gets 403."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec

from contracts.events import JobCompleted, RecordedEvent
from services.cli.events import format_history
from services.runtime.storage.local import LocalStorage
from tests.conftest import Server
from tests.gateway.jobs_client import body, client_for, read_events


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


async def test_byte_ranges_let_a_player_seek(server: Server, tmp_path: Path) -> None:
    storage = server.stack.runtime.storage
    assert isinstance(storage, LocalStorage)
    data = bytes(range(256)) * 4000  # 1 MB, every offset distinguishable
    src = tmp_path / "big.mp4"
    src.write_bytes(data)
    url = await storage.signed_url(await storage.put_file("jobs/ad_2/ad_2.mp4", src, "video/mp4"), 60)
    size = len(data)
    async with httpx.AsyncClient() as client:
        whole = await client.get(url)
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes" and whole.content == data
        for header, start, end in [
            ("bytes=0-99", 0, 99),
            ("bytes=500000-", 500000, size - 1),
            ("bytes=-1000", size - 1000, size - 1),
            ("bytes=999000-2000000", 999000, size - 1),  # clipped to the end
        ]:
            part = await client.get(url, headers={"Range": header})
            assert part.status_code == 206, header
            assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
            assert part.headers["content-type"] == "video/mp4"
            assert int(part.headers["content-length"]) == end - start + 1
            assert part.content == data[start : end + 1], header
        beyond = await client.get(url, headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        for ignored in ("bytes=0-1,5-9", "items=0-5", "bytes=9-2", "nonsense"):
            answer = await client.get(url, headers={"Range": ignored})
            assert answer.status_code == 200 and answer.content == data, ignored


async def test_a_completed_job_stores_references_and_streams_links(server: Server, avatar_data_uri: str) -> None:
    """A signed link is a credential while it lives: the event store (kept for ever, printed by `adagent events`)
    holds only the references, and each read signs them."""
    async with client_for(server.url, server.token) as client:
        created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
        complete = (await read_events(client, created["events_url"]))[-1].json()
        status = (await client.get(created["status_url"])).json()
        assert (await client.get(complete["final_video_url"])).status_code == 200
        assert (await client.get(status["captions_url"])).status_code == 200
    history = await server.stack.runtime.store.history(created["job_id"])
    completed = next(r.event for r in history if isinstance(r.event, JobCompleted))
    assert completed.v == 2 and completed.final_ref and completed.captions_ref
    stored = msgspec.json.encode(history).decode()
    printed = format_history(history)
    for text in (stored, printed):
        assert "signature=" not in text and "expires=" not in text
        for url in (complete["final_video_url"], status["captions_url"]):
            assert urlsplit(url).query not in text


def test_adagent_events_hides_the_links_a_v1_event_stored() -> None:
    v1 = JobCompleted(
        event_id="ad_1/completed", job_id="ad_1", v=1, final_ref="local://jobs/ad_1/ad_1.mp4", duration_s=1.0,
        final_video_url="http://127.0.0.1:8001/files/jobs/ad_1/ad_1.mp4?expires=1&signature=abc",
    )
    printed = format_history([RecordedEvent(seq=1, recorded_at=0.0, event=v1)])
    assert "signature=abc" not in printed and "final_ref=local://jobs/ad_1/ad_1.mp4" in printed
