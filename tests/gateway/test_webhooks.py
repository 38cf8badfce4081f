"""Webhooks: Standard Webhooks signatures, event selection, retries recorded in the job's stream, no re-sends.

A real HTTP receiver (uvicorn on a free local port) and a real runtime (SQLite store, in-memory bus). The receiver
checks signatures with its own implementation, written from the spec, so a wrong `sign` cannot pass by agreeing
with a wrong `verify`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contracts.events import (
    AnyEvent,
    ClipPlan,
    ClipRendered,
    ClipRenderingStarted,
    ClipsMerged,
    FinalizationStarted,
    JobCompleted,
    JobRequested,
    JobStarted,
    MergeStarted,
    PromptingStarted,
    PromptsGenerated,
    RecordedEvent,
    VoiceEnhanced,
    VoiceEnhancementStarted,
    WebhookAttempted,
    event_id,
)
from services.cli.server import bind
from services.gateway.webhook_signing import sign, verify
from services.gateway.webhooks import JOB_EVENT_TYPES, WebhookDispatcher, parse_retry_after
from services.runtime.context import Runtime, open_runtime
from services.runtime.settings import load_settings
from tests.gateway.fake_dns import FakeDns
from tests.gateway.webhook_receiver import Receiver, serving, spec_signature_ok

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OWNER = "alice"
FAST = (0.05, 0.1, 0.2)


# The receivers listen on 127.0.0.1, which the gateway refuses unless told receivers may be private.
LOCAL_RECEIVERS = {"ADAGENT_WEBHOOK_ALLOW_PRIVATE": "true"}


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(load_settings({"ADAGENT_HOME": str(tmp_path), **LOCAL_RECEIVERS}))
    yield runtime
    await runtime.close()


Make = Callable[..., Awaitable[WebhookDispatcher]]


@pytest.fixture
async def make_dispatcher(rt: Runtime) -> AsyncIterator[Make]:
    made: list[WebhookDispatcher] = []

    async def secret_for(owner: str) -> str | None:
        return SECRET if owner == OWNER else None

    async def make(*, start: bool = True, delays: Sequence[float] = FAST, **kw: Any) -> WebhookDispatcher:
        dispatcher = WebhookDispatcher(rt, secret_for, delays=delays, **kw)
        made.append(dispatcher)
        if start:
            await dispatcher.start()
        return dispatcher

    yield make
    for dispatcher in made:
        await dispatcher.close()


def job_events(job_id: str, url: str | None, webhook_events: list[str] | None = None) -> list[AnyEvent]:
    def eid(step: str) -> str:
        return event_id(job_id, step)

    return [
        JobRequested(
            event_id=eid("requested"),
            job_id=job_id,
            script="Hello there.",
            avatar_ref="avatars/a.jpg",
            character_name="Ann",
            voice_id=None,
            aspect_ratio="16:9",
            resolution="720p",
            owner=OWNER,
            webhook_url=url,
            webhook_events=webhook_events,
        ),
        JobStarted(event_id=eid("started"), job_id=job_id),
        PromptingStarted(event_id=eid("prompting"), job_id=job_id),
        PromptsGenerated(
            event_id=eid("prompts"),
            job_id=job_id,
            clips=[ClipPlan(index=1, line="Hello there.", prompt="a person waves", est_seconds=2.0)],
        ),
        ClipRenderingStarted(event_id=eid("rendering"), job_id=job_id, total_clips=1),
        ClipRendered(event_id=eid("clip1"), job_id=job_id, index=1, total_clips=1, clip_ref="c1", duration_s=2.0),
        MergeStarted(event_id=eid("merging"), job_id=job_id, total_clips=1),
        ClipsMerged(event_id=eid("merged"), job_id=job_id, merged_ref="m", duration_s=2.0),
        VoiceEnhancementStarted(event_id=eid("voicing"), job_id=job_id),
        VoiceEnhanced(event_id=eid("voiced"), job_id=job_id),
        FinalizationStarted(event_id=eid("finalizing"), job_id=job_id),
        JobCompleted(
            event_id=eid("completed"),
            job_id=job_id,
            final_ref="final",
            final_video_url="http://127.0.0.1:8001/files/final.mp4",
            duration_s=2.0,
        ),
    ]


async def run_job(rt: Runtime, events: list[AnyEvent]) -> list[RecordedEvent]:
    return [(await rt.recorder.record(ev)).recorded for ev in events]


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def attempts(rt: Runtime, job_id: str) -> list[WebhookAttempted]:
    return [r.event for r in await rt.store.history(job_id) if isinstance(r.event, WebhookAttempted)]


async def wait_attempts(rt: Runtime, job_id: str, n: int, within: float = 5.0) -> list[WebhookAttempted]:
    deadline = time.monotonic() + within
    while len(found := await attempts(rt, job_id)) < n:
        assert time.monotonic() < deadline, f"expected {n} attempts, have {len(found)}"
        await asyncio.sleep(0.02)
    return found


async def settle(dispatcher: WebhookDispatcher) -> None:
    """Nothing in flight, and nothing new starts for a moment: what was not sent by now is not being sent."""
    await eventually(lambda: dispatcher.in_flight == 0)
    await asyncio.sleep(0.3)
    assert dispatcher.in_flight == 0


def test_signing_reproduces_the_published_test_vector() -> None:
    secret, msg_id, ts = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    body = b'{"test": 2432232314}'
    signature = sign(secret, msg_id, ts, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"Webhook-Id": msg_id, "Webhook-Timestamp": str(ts), "Webhook-Signature": signature}
    assert verify(secret, headers, body, now=ts + 10)
    # Several signatures (a secret rotation): any valid one suffices.
    assert verify(secret, {**headers, "Webhook-Signature": f"v1,bm9wZQ== {signature}"}, body, now=ts)
    assert not verify(secret, headers, body + b" ", now=ts)  # tampered body
    assert not verify(secret, headers, body, now=ts + 301)  # stale
    assert not verify("whsec_" + base64.b64encode(b"another key").decode(), headers, body, now=ts)
    assert not verify(secret, {**headers, "Webhook-Signature": "v2," + signature[3:]}, body, now=ts)
    assert not verify(secret, {k: v for k, v in headers.items() if k != "Webhook-Id"}, body, now=ts)


def test_the_queue_is_bound_to_job_events_only() -> None:
    assert {"JobRequested", "PromptingStarted", "ClipRendered", "JobCompleted", "JobFailed"} <= set(JOB_EVENT_TYPES)
    assert not {"WebhookAttempted", "UserAdded", "ApiKeyCreated", "ApiKeyRevoked"} & set(JOB_EVENT_TYPES)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    assert parse_retry_after("soon") is None


async def test_only_the_terminal_event_is_delivered_by_default_and_never_twice(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    dispatcher = await make_dispatcher()
    recorded = await run_job(rt, job_events("ad_default", receiver.url))
    await run_job(rt, job_events("ad_nohook", None))  # no webhook_url: nothing is sent for it
    completed = recorded[-1]

    await eventually(lambda: len(receiver.requests) >= 1)
    await settle(dispatcher)
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert spec_signature_ok(SECRET, request.headers, request.body)
    assert request.headers["webhook-id"] == f"msg_ad_default_{completed.seq}"
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - request.at) < 2
    payload = request.json
    assert payload["type"] == "complete"
    assert datetime.fromisoformat(payload["timestamp"]).timestamp() == pytest.approx(completed.recorded_at, abs=0.01)
    assert payload["data"] == {
        "status": "completed",
        "final_video_url": "http://127.0.0.1:8001/files/final.mp4",
        "job_id": "ad_default",
        "id": completed.seq,
    }
    [attempt] = await wait_attempts(rt, "ad_default", 1)
    assert (attempt.ok, attempt.attempt, attempt.status_code, attempt.event) == (True, 1, 200, "complete")
    assert attempt.next_attempt_at is None
    assert await attempts(rt, "ad_nohook") == []

    # Redelivery: recording the same fact again republishes it, and a direct call plays a redelivered message.
    await rt.recorder.record(completed.event)
    await dispatcher.handle(completed)
    await settle(dispatcher)
    assert len(receiver.requests) == 1
    assert len(await attempts(rt, "ad_default")) == 1


async def test_the_chosen_events_are_delivered(rt: Runtime, receiver: Receiver, make_dispatcher: Make) -> None:
    dispatcher = await make_dispatcher()
    recorded = await run_job(rt, job_events("ad_chosen", receiver.url, ["step1", "complete"]))
    await eventually(lambda: len(receiver.requests) >= 2)
    await settle(dispatcher)
    by_type = {r.json["type"]: r for r in receiver.requests}
    assert sorted(by_type) == ["complete", "step1"]
    assert all(spec_signature_ok(SECRET, r.headers, r.body) for r in receiver.requests)
    step1_seq = next(r.seq for r in recorded if isinstance(r.event, PromptingStarted))
    assert by_type["step1"].json["data"] == {
        "step": 1,
        "message": "Generating video prompts...",
        "progress": 10,
        "job_id": "ad_chosen",
        "id": step1_seq,
    }
    assert by_type["step1"].headers["webhook-id"] == f"msg_ad_chosen_{step1_seq}"
    assert by_type["step1"].headers["webhook-id"] != by_type["complete"].headers["webhook-id"]


async def test_failures_are_retried_with_the_same_id_and_each_attempt_is_recorded(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    receiver.replies = [(500, {}), (500, {})]
    dispatcher = await make_dispatcher()
    await run_job(rt, job_events("ad_retry", receiver.url))
    found = await wait_attempts(rt, "ad_retry", 3)
    await settle(dispatcher)
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert all(spec_signature_ok(SECRET, r.headers, r.body) for r in receiver.requests)
    assert len({r.body for r in receiver.requests}) == 1  # the same event, byte for byte
    assert [a.ok for a in found] == [False, False, True]
    assert [a.attempt for a in found] == [1, 2, 3]
    assert [a.status_code for a in found] == [500, 500, 200]
    assert [a.error for a in found] == ["HTTP 500", "HTTP 500", None]
    assert found[0].next_attempt_at is not None and found[1].next_attempt_at is not None
    assert found[2].next_attempt_at is None
    assert [a.event_id for a in found] == [
        f"ad_retry/webhook/{found[0].webhook_id.rsplit('_', 1)[1]}/{n}" for n in (1, 2, 3)
    ]


async def test_retry_after_is_honoured_and_each_attempt_has_a_fresh_timestamp(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    receiver.replies = [(503, {"retry-after": "1"})]
    dispatcher = await make_dispatcher(delays=(0.05,))
    await run_job(rt, job_events("ad_later", receiver.url))
    found = await wait_attempts(rt, "ad_later", 2)
    await settle(dispatcher)
    first, second = receiver.requests
    assert second.at - first.at >= 1.0  # Retry-After: 1, although our own schedule said 0.05 s
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    for request in (first, second):
        assert abs(int(request.headers["webhook-timestamp"]) - request.at) < 2
        assert spec_signature_ok(SECRET, request.headers, request.body)
    assert [(a.status_code, a.ok) for a in found] == [(503, False), (200, True)]


async def test_gone_stops_the_retries(rt: Runtime, receiver: Receiver, make_dispatcher: Make) -> None:
    receiver.replies = [(410, {}), (410, {}), (410, {})]
    dispatcher = await make_dispatcher()
    await run_job(rt, job_events("ad_gone", receiver.url))
    [attempt] = await wait_attempts(rt, "ad_gone", 1)
    await settle(dispatcher)
    assert len(receiver.requests) == 1
    assert (attempt.status_code, attempt.ok, attempt.next_attempt_at) == (410, False, None)
    assert len(await attempts(rt, "ad_gone")) == 1


async def test_an_unreachable_receiver_is_given_up_on_after_the_schedule(rt: Runtime, make_dispatcher: Make) -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there any more: connection refused
    dispatcher = await make_dispatcher(delays=(0.05, 0.05))
    await run_job(rt, job_events("ad_down", f"http://127.0.0.1:{port}/hook?token=s3cr3t"))
    found = await wait_attempts(rt, "ad_down", 3)
    await settle(dispatcher)
    assert len(await attempts(rt, "ad_down")) == 3
    assert [a.status_code for a in found] == [None, None, None]
    assert all(a.error is not None and a.error.startswith("connection failed") for a in found)
    assert all("s3cr3t" not in (a.error or "") for a in found)
    assert [a.next_attempt_at is None for a in found] == [False, False, True]


async def test_a_receiver_that_times_out_is_a_failed_attempt(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    receiver.hold_seconds = 5.0
    dispatcher = await make_dispatcher(delays=(), timeout=0.3)
    await run_job(rt, job_events("ad_timeout", receiver.url))
    [attempt] = await wait_attempts(rt, "ad_timeout", 1)
    await settle(dispatcher)
    assert (attempt.ok, attempt.status_code, attempt.next_attempt_at) == (False, None, None)
    assert attempt.error == "timed out after 0.3s"


async def test_a_slow_receiver_does_not_hold_up_the_bus_handler(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    receiver.hold_seconds = 5.0
    # Not started: the handler is called directly, as the bus would call it, and timed.
    dispatcher = await make_dispatcher(start=False)
    completed = (await run_job(rt, job_events("ad_slow", receiver.url)))[-1]
    started = time.monotonic()
    await dispatcher.handle(completed)
    assert time.monotonic() - started < 0.5
    await eventually(lambda: len(receiver.requests) == 1)  # the POST is under way while the handler is long done
    assert dispatcher.in_flight == 1
    await dispatcher.handle(completed)  # a redelivery while it is in flight does not start a second delivery
    assert dispatcher.in_flight == 1
    await dispatcher.close()  # cancels the delivery: the test does not wait the 5 s out
    assert dispatcher.in_flight == 0
    assert await attempts(rt, "ad_slow") == []


async def restarted(tmp_path: Path, old: WebhookDispatcher | None, **kw: Any) -> tuple[Runtime, WebhookDispatcher]:
    """Stop `old` (a gateway going down), then open a new runtime on the same store and start a dispatcher in it."""
    if old is not None:
        await old.close()

    async def secret_for(owner: str) -> str | None:
        return SECRET if owner == OWNER else None

    runtime = await open_runtime(load_settings({"ADAGENT_HOME": str(tmp_path), **LOCAL_RECEIVERS}))
    dispatcher = WebhookDispatcher(runtime, secret_for, **kw)
    await dispatcher.start()
    return runtime, dispatcher


async def test_a_retry_pending_when_the_gateway_stopped_is_made_by_the_next_one(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make, tmp_path: Path
) -> None:
    receiver.replies = [(500, {})]
    first = await make_dispatcher(delays=(1.0,))
    await run_job(rt, job_events("ad_restart", receiver.url))
    [failed] = await wait_attempts(rt, "ad_restart", 1)
    assert failed.next_attempt_at is not None

    runtime, second = await restarted(tmp_path, first, delays=(1.0,), adopt_after=0.2)
    try:
        assert await second.recovered() == 1
        found = await wait_attempts(runtime, "ad_restart", 2)
        await settle(second)
    finally:
        await second.close()
        await runtime.close()
    assert len(receiver.requests) == 2
    retry = receiver.requests[1]
    assert retry.at >= failed.next_attempt_at + 0.2 - 0.05  # not before it was due and overdue
    assert retry.headers["webhook-id"] == receiver.requests[0].headers["webhook-id"]
    assert retry.body == receiver.requests[0].body
    assert spec_signature_ok(SECRET, retry.headers, retry.body)
    assert [(a.attempt, a.ok) for a in found] == [(1, False), (2, True)]


async def test_an_event_never_attempted_before_the_gateway_stopped_is_delivered_after_it_starts(
    rt: Runtime, receiver: Receiver, tmp_path: Path
) -> None:
    # Nothing consumes the webhook queue while the job runs: as when the in-memory bus lost its messages on a stop.
    recorded = await run_job(rt, job_events("ad_orphan", receiver.url, ["step1", "complete"]))
    await run_job(rt, job_events("ad_orphan_nohook", None))
    runtime, dispatcher = await restarted(tmp_path, None, delays=FAST, adopt_after=0.2)
    try:
        assert await dispatcher.recovered() == 2
        await wait_attempts(runtime, "ad_orphan", 2)
        await settle(dispatcher)
        assert await attempts(runtime, "ad_orphan_nohook") == []
    finally:
        await dispatcher.close()
        await runtime.close()
    assert sorted(r.json["type"] for r in receiver.requests) == ["complete", "step1"]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {
        f"msg_ad_orphan_{r.seq}" for r in recorded if isinstance(r.event, (PromptingStarted, JobCompleted))
    }


async def test_a_delivery_with_a_live_owner_is_watched_not_sent_twice(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    receiver.replies = [(500, {})]
    owner = await make_dispatcher(delays=(0.6,))
    await run_job(rt, job_events("ad_owned", receiver.url))
    await wait_attempts(rt, "ad_owned", 1)
    # A second gateway starts while the first one still holds the retry.
    other = await make_dispatcher(delays=(0.6,), adopt_after=0.3)
    assert await other.recovered() == 1
    assert other.in_flight == 1
    await wait_attempts(rt, "ad_owned", 2)
    await settle(other)
    await settle(owner)
    assert len(receiver.requests) == 2
    assert [(a.attempt, a.ok) for a in await attempts(rt, "ad_owned")] == [(1, False), (2, True)]


async def test_nothing_finished_is_adopted(rt: Runtime, receiver: Receiver, make_dispatcher: Make) -> None:
    receiver.replies = [(410, {})]
    await make_dispatcher()
    await run_job(rt, job_events("ad_delivered", receiver.url))
    await run_job(rt, job_events("ad_given_up", receiver.url))
    await wait_attempts(rt, "ad_delivered", 1)
    await wait_attempts(rt, "ad_given_up", 1)
    later = await make_dispatcher(adopt_after=0.0)
    assert await later.recovered() == 0
    assert later.in_flight == 0


async def test_a_redelivered_message_is_sent_at_once_not_when_its_adoption_falls_due(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    completed = (await run_job(rt, job_events("ad_back", receiver.url)))[-1]
    dispatcher = await make_dispatcher(adopt_after=60.0)
    assert await dispatcher.recovered() == 1
    await dispatcher.handle(completed)  # the bus brings the message back
    await eventually(lambda: len(receiver.requests) == 1, within=3.0)
    [attempt] = await wait_attempts(rt, "ad_back", 1)
    assert attempt.ok
    await settle(dispatcher)


async def test_jobs_outside_the_recovery_window_are_left_alone(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    await run_job(rt, job_events("ad_ancient", receiver.url))
    await asyncio.sleep(0.3)
    dispatcher = await make_dispatcher(recovery_window=0.2, adopt_after=0.0)
    assert await dispatcher.recovered() == 0
    await settle(dispatcher)
    assert receiver.requests == []


# Where a webhook may go: the dispatcher resolves the host at each attempt and connects only to vetted addresses.

REFUSED = "the webhook URL resolves to a non-public address"


async def test_a_name_that_resolves_inside_the_network_is_refused_once_and_for_all(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    dns = FakeDns({"hooks.example.test": ["127.0.0.1"]})
    dispatcher = await make_dispatcher(allow_private=False, resolve=dns, delays=(0.05, 0.05))
    url = f"http://hooks.example.test:{port_of(receiver)}/hook?token=s3cr3t"
    await run_job(rt, job_events("ad_inside", url))
    [attempt] = await wait_attempts(rt, "ad_inside", 1)
    await settle(dispatcher)
    assert (attempt.ok, attempt.status_code, attempt.next_attempt_at) == (False, None, None)  # final: no retries
    assert attempt.error == REFUSED  # names neither the URL nor its token
    assert receiver.requests == []
    assert len(await attempts(rt, "ad_inside")) == 1


async def test_one_internal_address_among_public_ones_is_enough_to_refuse(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    dns = FakeDns({"hooks.example.test": ["93.184.216.34", "10.0.0.7"]})
    dispatcher = await make_dispatcher(allow_private=False, resolve=dns)
    await run_job(rt, job_events("ad_mixed", "https://hooks.example.test/hook"))
    [attempt] = await wait_attempts(rt, "ad_mixed", 1)
    await settle(dispatcher)
    assert (attempt.ok, attempt.error, attempt.next_attempt_at) == (False, REFUSED, None)


async def test_a_name_that_does_not_resolve_is_retried(rt: Runtime, make_dispatcher: Make) -> None:
    dispatcher = await make_dispatcher(allow_private=False, resolve=FakeDns({}), delays=(0.05,))
    await run_job(rt, job_events("ad_nxdomain", "https://nowhere.example.test/hook"))
    found = await wait_attempts(rt, "ad_nxdomain", 2)
    await settle(dispatcher)
    assert [(a.error, a.next_attempt_at is None) for a in found] == [
        ("the webhook host did not resolve", False),
        ("the webhook host did not resolve", True),
    ]


async def test_the_request_goes_to_the_vetted_address_under_the_url_host_name(
    rt: Runtime, receiver: Receiver, make_dispatcher: Make
) -> None:
    # With private receivers allowed, the name is still resolved once and the connection made to that address: the
    # receiver sees the URL's host in Host, and nothing but the fake resolver could have found 127.0.0.1 for it.
    dns = FakeDns({"hooks.example.test": ["127.0.0.1"]})
    dispatcher = await make_dispatcher(allow_private=True, resolve=dns)
    port = port_of(receiver)
    await run_job(rt, job_events("ad_pinned", f"http://hooks.example.test:{port}/hook"))
    [attempt] = await wait_attempts(rt, "ad_pinned", 1)
    await settle(dispatcher)
    assert attempt.ok
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.example.test:{port}"
    assert spec_signature_ok(SECRET, request.headers, request.body)
    assert dns.lookups == ["hooks.example.test"]


async def test_https_to_a_vetted_address_checks_the_certificate_of_the_url_host_name(
    rt: Runtime, make_dispatcher: Make, tmp_path: Path
) -> None:
    # The certificate names only hooks.example.test, no IP address: the handshake succeeds only if SNI and the
    # certificate check use the URL's host, although the connection is made to 127.0.0.1.
    certfile, keyfile = self_signed(tmp_path, "hooks.example.test")
    trusting = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(certfile)), follow_redirects=False)
    dns = FakeDns({"hooks.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    try:
        async with serving(certfile, keyfile) as tls_receiver:
            dispatcher = await make_dispatcher(allow_private=True, resolve=dns, client=trusting, delays=())
            port = port_of(tls_receiver)
            await run_job(rt, job_events("ad_tls", f"https://hooks.example.test:{port}/hook"))
            await run_job(rt, job_events("ad_tls_wrong_name", f"https://other.example.test:{port}/hook"))
            [good] = await wait_attempts(rt, "ad_tls", 1)
            [bad] = await wait_attempts(rt, "ad_tls_wrong_name", 1)
            await settle(dispatcher)
    finally:
        await trusting.aclose()
    assert good.ok, good.error
    assert not bad.ok and bad.error is not None and bad.error.startswith("connection failed")  # certificate mismatch
    [request] = tls_receiver.requests
    assert request.headers["host"] == f"hooks.example.test:{port}"


def port_of(receiver: Receiver) -> int:
    port = urlsplit(receiver.url).port
    assert port is not None
    return port


def self_signed(directory: Path, host_name: str) -> tuple[Path, Path]:
    """A certificate for `host_name` alone (no IP address in it), and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certfile, keyfile
