"""Webhooks reach public addresses only (no SSRF into the deployment), through the API: a URL whose host is internal
by its form gets a 422 naming `webhook_url`; a name that resolves to an internal address passes the request and is
refused at delivery, once, with the attempt recorded and nothing sent; ADAGENT_WEBHOOK_ALLOW_PRIVATE lifts both."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from contracts.events import WebhookAttempted
from services.gateway import public_address
from tests.conftest import Server, start_server
from tests.gateway.fake_dns import FakeDns
from tests.gateway.jobs_client import body, client_for, wait_for_status
from tests.gateway.webhook_receiver import Receiver, spec_signature_ok

INTERNAL: list[tuple[str, str, str]] = [
    ("loopback", "http://127.0.0.1:8080/hook", "a loopback address"),
    ("loopback, short form", "http://127.1/hook", "a loopback address"),
    ("loopback, one number", "http://2130706433/hook", "a loopback address"),
    ("loopback, hex", "http://0x7f.0.0.1/hook", "a loopback address"),
    ("loopback, IPv6", "http://[::1]:8080/hook", "a loopback address"),
    ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/hook", "a loopback address"),
    ("localhost", "http://localhost:8001/hook", "only resolves inside a network"),
    ("localhost, any case, trailing dot", "http://LocalHost.:8001/hook", "only resolves inside a network"),
    ("a .localhost name", "http://api.localhost/hook", "only resolves inside a network"),
    ("the broker by its service name", "http://rabbitmq:15672/api/definitions", "only resolves inside a network"),
    ("a .internal name", "http://metadata.google.internal/computeMetadata/v1/", "only resolves inside a network"),
    ("cloud metadata", "http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("link-local, IPv6", "http://[fe80::1]/hook", "a link-local address"),
    ("cloud metadata through NAT64", "http://[64:ff9b::a9fe:a9fe]/latest/", "a link-local address"),
    ("private 10/8", "http://10.1.2.3/hook", "a private address"),
    ("private 172.16/12", "https://172.16.0.1/hook", "a private address"),
    ("private 192.168/16", "http://192.168.1.20:8080/hook", "a private address"),
    ("IPv4-mapped private", "http://[::ffff:10.0.0.1]/hook", "a private address"),
    ("private by 6to4", "http://[2002:a00:1::1]/hook", "a private address"),
    ("unique-local fc00::/7", "http://[fc00::1]/hook", "a unique-local address"),
    ("unique-local fd00::/8", "http://[fd12:3456:789a::1]/hook", "a unique-local address"),
    ("carrier-grade NAT", "http://100.64.0.1/hook", "a shared (carrier-grade NAT) address"),
    ("multicast", "http://224.0.0.1/hook", "a multicast address"),
    ("multicast, IPv6", "http://[ff02::1]/hook", "a multicast address"),
    ("unspecified", "http://0.0.0.0:8001/hook", "the unspecified address"),
    ("unspecified, IPv6", "http://[::]/hook", "the unspecified address"),
    ("reserved", "http://240.0.0.1/hook", "a reserved address"),
    ("with credentials", "https://user:pass@10.0.0.1/hook", "a private address"),
]


@pytest.mark.parametrize(("case", "url", "words"), INTERNAL, ids=[c[0] for c in INTERNAL])
async def test_a_webhook_url_to_an_internal_address_is_refused(
    server: Server, avatar_data_uri: str, case: str, url: str, words: str
) -> None:
    async with client_for(server.url, server.token) as client:
        response = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, webhook_url=url))
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["status_code"] == 422
        assert error["field"] == "webhook_url"
        assert error["detail"].startswith("webhook_url: must reach a public internet address; ")
        assert words in error["detail"]
        assert (await client.get("/api/ad-agent/jobs")).json()["jobs"] == []  # no job was created


PUBLIC = [
    "https://hooks.example.com/adagent?token=abc",
    "http://93.184.216.34:8080/hook",
    "https://[2606:4700:4700::1111]/hook",
    "http://[::ffff:93.184.216.34]/hook",
]


@pytest.mark.parametrize("url", PUBLIC)
async def test_a_webhook_url_to_a_public_host_is_accepted(
    tmp_path: Path, avatar_data_uri: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job is not waited for; should a delivery start, it does not look for these names in a DNS there is not.
    monkeypatch.setattr(public_address, "resolve_host", FakeDns({}))
    async for server in start_server(tmp_path / "home", {"workers": ()}):
        async with client_for(server.url, server.token) as client:
            response = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, webhook_url=url))
            assert response.status_code == 202, response.text


async def test_the_setting_allows_receivers_inside_the_network(tmp_path: Path, avatar_data_uri: str) -> None:
    async for server in start_server(tmp_path / "home", {"workers": ()}, webhook_allow_private=True):
        async with client_for(server.url, server.token) as client:
            for url in ("http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "http://169.254.169.254/"):
                response = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, webhook_url=url))
                assert response.status_code == 202, response.text


async def attempts_of(server: Server, job_id: str, n: int, within: float = 20.0) -> list[WebhookAttempted]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        history = await server.stack.runtime.store.history(job_id)
        found = [r.event for r in history if isinstance(r.event, WebhookAttempted)]
        if len(found) >= n:
            return found
        assert loop.time() < deadline, found
        await asyncio.sleep(0.05)


async def test_a_name_that_resolves_to_an_internal_address_is_refused_at_delivery(
    tmp_path: Path, avatar_data_uri: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name passes the request (DNS may change after it anyway); at delivery it resolves to the receiver's
    # loopback address, and nothing is sent. Short delays: a retry, if there were one, would be seen.
    monkeypatch.setattr(public_address, "resolve_host", FakeDns({"hooks.example.test": ["127.0.0.1"]}))
    url = f"http://hooks.example.test:{urlsplit(receiver.url).port}/hook?token=s3cr3t"
    async for server in start_server(tmp_path / "home", webhook_delays=(0.05, 0.05)):
        async with client_for(server.url, server.token) as client:
            created = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, webhook_url=url))
            assert created.status_code == 202, created.text
            job_id = created.json()["job_id"]
            await wait_for_status(client, job_id, "completed")
            [attempt] = await attempts_of(server, job_id, 1)
            await asyncio.sleep(0.5)
            assert len(await attempts_of(server, job_id, 1)) == 1
    assert (attempt.event, attempt.ok, attempt.status_code) == ("complete", False, None)
    assert attempt.next_attempt_at is None  # final
    assert attempt.error == "the webhook URL resolves to a non-public address"
    assert receiver.requests == []


async def test_the_same_name_is_delivered_to_when_private_receivers_are_allowed(
    tmp_path: Path, avatar_data_uri: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(public_address, "resolve_host", FakeDns({"hooks.example.test": ["127.0.0.1"]}))
    port = urlsplit(receiver.url).port
    url = f"http://hooks.example.test:{port}/hook"
    async for server in start_server(tmp_path / "home", webhook_allow_private=True):
        async with client_for(server.url, server.token) as client:
            secret = (await client.get("/api/auth/webhook-secret")).json()["secret"]
            created = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, webhook_url=url))
            job_id = created.json()["job_id"]
            await wait_for_status(client, job_id, "completed")
            [attempt] = await attempts_of(server, job_id, 1)
    assert attempt.ok
    [request] = receiver.requests
    assert request.json["type"] == "complete" and request.json["data"]["job_id"] == job_id
    assert request.headers["host"] == f"hooks.example.test:{port}"
    assert spec_signature_ok(secret, request.headers, request.body)
