"""Webhook delivery: a job's SSE events POSTed to the job's `webhook_url`, signed per Standard Webhooks.

The dispatcher consumes every job event from the "webhooks" work queue, maps it to its SSE event with the same fold
the SSE stream uses (so a webhook carries exactly what a stream subscriber sees, `id` = the job's sequence number),
and keeps the events the job asked for (`webhook_events`, by default the terminal ones). Delivery runs in a
background task so a slow or dead receiver never holds up the bus or the pipeline; each attempt is recorded as a
`WebhookAttempted` fact in the job's own stream, with a deterministic event id, so the history tells what was sent
and a redelivered message neither re-sends a delivered event nor starts a second retry chain.

A delivery's bus message is acknowledged once the delivery is scheduled, so a process that stops leaves deliveries
that no message will bring back: one waiting for its next retry, or one scheduled and not yet attempted (with the
in-memory bus, every message not yet handled). On start the dispatcher therefore adopts them from the store: for each
job with events in the last `recovery_window` seconds, every chosen event without a final attempt is watched until
its next attempt is overdue by `adopt_after` seconds (its first attempt: from when the event was recorded). An
attempt recorded meanwhile means its owner is alive (another gateway, or the bus brought the message back), and the
watch moves on to that attempt's own retry; an overdue one is taken over, numbered after the attempts recorded.
Attempts are recorded under deterministic ids, so of two processes that do take the same attempt, one records it and
the other stops; the receiver may then see that `webhook-id` twice, which Standard Webhooks asks receivers to expect.

Each attempt resolves the URL's host and refuses, as a final failure, a host with any non-public address (see
`public_address`; `ADAGENT_WEBHOOK_ALLOW_PRIVATE` lifts that), then connects to a vetted address itself, naming the
host in the Host header and in TLS (SNI and the certificate check), so a second lookup cannot lead elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import get_args

import httpx
import structlog

from contracts.events import AnyEvent, JobRequested, RecordedEvent, WebhookAttempted, event_id
from contracts.sse import TERMINAL_SSE_EVENTS, SseEvent, SseProjection
from services.gateway import public_address
from services.gateway.fresh_links import with_fresh_links
from services.gateway.public_address import IPAddress, NonPublicAddress, Resolver, vetted_addresses
from services.gateway.webhook_signing import InvalidSecret, signed_headers
from services.runtime.context import Runtime

log = structlog.get_logger(__name__)

QUEUE = "webhooks"

# Events of other streams (accounts), and our own attempt records, which must not feed back into delivery.
_NOT_DELIVERED = frozenset(
    {"WebhookAttempted", "UserAdded", "UserPasswordChanged", "UserRemoved", "ApiKeyCreated", "ApiKeyRevoked"}
)
# Derived from the union so a new job event is bound to the queue without anyone remembering to add it here.
JOB_EVENT_TYPES: tuple[str, ...] = tuple(t.__name__ for t in get_args(AnyEvent) if t.__name__ not in _NOT_DELIVERED)

# Seconds to wait before retry n (n = 1, 2, ...): doubling from 5 s, 635 s (10 min 35 s) in all before jitter,
# so a receiver that is down for a deploy or a short outage still gets the event. 8 attempts in total.
DEFAULT_DELAYS: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
DEFAULT_JITTER = 0.1  # up to +10% per delay, so jobs that failed together do not retry in lockstep
# A receiver's Retry-After is honoured when longer than our schedule, but not beyond this: one bad header
# must not park a delivery for days.
MAX_RETRY_AFTER_SECONDS = 3600.0
# How far back a starting dispatcher looks for deliveries to adopt: ample for the ~11-minute retry schedule, and for
# a gateway that was down for a night.
DEFAULT_RECOVERY_WINDOW = 24 * 3600.0
CONSUMER_CONCURRENCY = 4  # the handler only reads the history and schedules, so a few suffice
USER_AGENT = "AdAgent-Webhooks/1"
_DEFAULT_PORTS = {"http": 80, "https": 443}

SecretLookup = Callable[[str], Awaitable[str | None]]


def webhook_id_for(job_id: str, seq: int) -> str:
    """The `webhook-id` of the delivery of the job's event `seq`: the same for every retry of that event."""
    return f"msg_{job_id}_{seq}"


def attempt_event_id(job_id: str, seq: int, attempt: int) -> str:
    return event_id(job_id, "webhook", seq, attempt)


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_body(event: str, seq: int, recorded_at: float, data: dict[str, object]) -> bytes:
    payload = {"type": event, "timestamp": _iso_utc(recorded_at), "data": {**data, "id": seq}}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class _Delivery:
    job_id: str
    seq: int
    webhook_id: str
    event: str  # the SSE event name
    url: str
    owner: str
    recorded: RecordedEvent
    sse: SseEvent  # its `complete` links are signed at each attempt: the stored event keeps references only


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    ok: bool
    error: str | None = None
    final: bool = False  # no point retrying (410 Gone, no usable secret, unusable URL)
    retry_after: float | None = None


class WebhookDispatcher:
    """Delivers a job's chosen SSE events to its webhook, retrying on failure; see the module docstring."""

    def __init__(
        self,
        rt: Runtime,
        secret_for: SecretLookup,
        *,
        delays: Sequence[float] = DEFAULT_DELAYS,
        timeout: float = 10.0,
        max_in_flight: int = 32,
        client: httpx.AsyncClient | None = None,
        jitter: float = DEFAULT_JITTER,
        recovery_window: float = DEFAULT_RECOVERY_WINDOW,
        adopt_after: float | None = None,
        allow_private: bool | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        """`allow_private`: deliver to non-public addresses too (None: the runtime's ADAGENT_WEBHOOK_ALLOW_PRIVATE).
        `resolve`: a host's addresses (by default the system resolver; tests give names addresses)."""
        self._rt = rt
        self._allow_private = rt.settings.webhook_allow_private if allow_private is None else allow_private
        self._resolve = public_address.resolve_host if resolve is None else resolve
        self._recovery_window = recovery_window
        # Past its due time, a live owner records an attempt within one request timeout; the margin covers a slow
        # store and clocks a little apart.
        self._adopt_after = timeout + 20.0 if adopt_after is None else adopt_after
        self._secret_for = secret_for
        self._delays = tuple(delays)
        self._timeout = timeout
        self._jitter = jitter
        # Bounds concurrent POSTs only, not deliveries waiting for a retry: those cost nothing while they sleep.
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._owns_client = client is None
        # No redirects: a receiver could point one at an internal address, past the vetting. No kept-alive
        # connections: the pool is keyed by the vetted IP, so a TLS connection checked for one host name could
        # otherwise carry a request for another name that shares the IP.
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}  # webhook id -> its delivery, in this process
        self._recovery: asyncio.Task[int] | None = None
        self._watching: set[str] = set()  # webhook ids adopted and not yet overdue
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Deliveries scheduled and not finished (attempting, waiting for a retry, or watched for adoption)."""
        return len(self._tasks)

    async def start(self) -> None:
        await self._rt.bus.consume_events(QUEUE, JOB_EVENT_TYPES, self.handle, concurrency=CONSUMER_CONCURRENCY)
        self._recovery = asyncio.create_task(self.recover(), name="webhook:recover")

    async def recovered(self) -> int:
        """Wait for the start-up recovery; how many deliveries it adopted."""
        return 0 if self._recovery is None else await self._recovery

    async def recover(self) -> int:
        """Watch the deliveries that a stopped process left unfinished (see the module docstring)."""
        since = time.time() - self._recovery_window
        adopted = 0
        try:
            for job_id in await self._rt.store.job_ids_active_since(since):
                if self._closed:
                    break
                history = await self._rt.store.history(job_id)
                adopted += sum(self._schedule(recorded, history, adopt=True) for recorded in history)
        except Exception:  # the live path still works; only what a stopped process left is not picked up
            log.exception("webhook.recovery_failed", adopted=adopted)
            return adopted
        if adopted:
            log.info("webhook.recovery_watching", deliveries=adopted)
        return adopted

    async def close(self) -> None:
        """Cancel the deliveries in flight (a cancelled one records nothing further) and close our HTTP client."""
        self._closed = True
        if self._recovery is not None:
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._owns_client:
            await self._client.aclose()

    async def handle(self, recorded: RecordedEvent) -> None:
        """The bus handler: decide whether this event is to be delivered and schedule it. Never waits on HTTP."""
        if self._closed:
            return
        self._schedule(recorded, await self._rt.store.history(recorded.event.job_id), adopt=False)

    def _schedule(self, recorded: RecordedEvent, history: list[RecordedEvent], *, adopt: bool) -> bool:
        """Start delivering `recorded` if the job wants it and the history has no final attempt; True if started.
        Adopted (`adopt`), it is only watched until it is overdue, as it may still have a live owner elsewhere."""
        if self._closed:
            return False
        job_id = recorded.event.job_id
        requested = next((r.event for r in history if isinstance(r.event, JobRequested)), None)
        if requested is None and isinstance(recorded.event, JobRequested):
            requested = recorded.event
        if requested is None or not requested.webhook_url:
            return False
        # The fold needs everything before this event (clip numbering depends on it); the event itself is applied
        # from the message, so a store read that lags behind the bus still maps it.
        projection = SseProjection()
        for earlier in history:
            if earlier.seq >= recorded.seq:
                break
            projection.apply(earlier)
        sse = projection.apply(recorded)
        if sse is None:
            return False
        wanted = TERMINAL_SSE_EVENTS if requested.webhook_events is None else frozenset(requested.webhook_events)
        if sse.event not in wanted:
            return False
        webhook_id = webhook_id_for(job_id, recorded.seq)
        if webhook_id in self._watching and not adopt:
            self._tasks[webhook_id].cancel()  # the bus brought its message back: deliver it now, not when overdue
            del self._tasks[webhook_id]
        if webhook_id in self._tasks:
            return False  # a redelivery while this process is still delivering it
        attempts = _attempts(history, webhook_id)
        # Delivered, or given up on: either way the history has its final word, and a redelivery must not re-send.
        if _finished(attempts):
            return False
        last = max(attempts, key=lambda a: a.attempt, default=None)
        delivery = _Delivery(
            job_id=job_id,
            seq=recorded.seq,
            webhook_id=webhook_id,
            event=sse.event,
            url=requested.webhook_url,
            owner=requested.owner,
            recorded=recorded,
            sse=sse,
        )
        if adopt:
            self._watching.add(webhook_id)
            work = self._adopt(delivery, last, recorded.recorded_at)
        else:
            work = self._deliver(delivery, *_resume_point(last))
        task = asyncio.create_task(work, name=f"webhook:{webhook_id}")
        self._tasks[webhook_id] = task
        task.add_done_callback(self._forget)
        return True

    def _forget(self, task: asyncio.Task[None]) -> None:
        # By identity: a later delivery of the same webhook id may already have taken the slot.
        for webhook_id, current in list(self._tasks.items()):
            if current is task:
                del self._tasks[webhook_id]

    async def _adopt(self, d: _Delivery, last: WebhookAttempted | None, recorded_at: float) -> None:
        try:
            while True:
                due = recorded_at if last is None or last.next_attempt_at is None else last.next_attempt_at
                wait = due + self._adopt_after - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                attempts = _attempts(await self._rt.store.history(d.job_id), d.webhook_id)
                if _finished(attempts):
                    return
                latest = max(attempts, key=lambda a: a.attempt, default=None)
                if latest is None or (last is not None and latest.attempt == last.attempt):
                    break  # nobody attempted it when it was due: its owner is gone
                last = latest  # an owner is alive; watch its next retry
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook.adoption_crashed", job_id=d.job_id, webhook_id=d.webhook_id)
            return
        finally:
            self._watching.discard(d.webhook_id)
        log.info("webhook.adopted", job_id=d.job_id, webhook_id=d.webhook_id, attempt=_resume_point(last)[0])
        await self._deliver(d, _resume_point(last)[0], 0.0)

    async def _deliver(self, d: _Delivery, attempt: int, delay: float) -> None:
        try:
            while True:
                if delay > 0:
                    await asyncio.sleep(delay)
                async with self._semaphore:
                    outcome = await self._attempt(d)
                next_delay = self._next_delay(attempt, outcome)
                next_at = None if next_delay is None else time.time() + next_delay
                if not await self._record(d, attempt, outcome, next_at):
                    return
                if next_delay is None:
                    return
                attempt += 1
                delay = next_delay
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not surface as an unretrieved task exception and nothing else
            log.exception("webhook.delivery_crashed", job_id=d.job_id, webhook_id=d.webhook_id)

    def _next_delay(self, attempt: int, outcome: _Outcome) -> float | None:
        if outcome.ok or outcome.final or attempt > len(self._delays):
            return None
        delay = self._delays[attempt - 1] * (1.0 + random.uniform(0.0, self._jitter))
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER_SECONDS))
        return delay

    async def _attempt(self, d: _Delivery) -> _Outcome:
        try:
            secret = await self._secret_for(d.owner)
        except Exception:
            log.exception("webhook.secret_lookup_failed", job_id=d.job_id, webhook_id=d.webhook_id)
            return _Outcome(None, False, "webhook secret lookup failed")
        if not secret:
            return _Outcome(None, False, "no webhook secret for the job's owner", final=True)
        try:
            sse = await with_fresh_links(self._rt, d.sse, d.recorded)
        except Exception:
            log.exception("webhook.link_signing_failed", job_id=d.job_id, webhook_id=d.webhook_id)
            return _Outcome(None, False, "the video's link could not be signed")
        body = webhook_body(sse.event, d.seq, d.recorded.recorded_at, sse.data)
        # Fresh per attempt, as the spec requires: a receiver rejects stale timestamps to stop replays.
        timestamp = int(time.time())
        try:
            headers = signed_headers(secret, d.webhook_id, timestamp, body)
        except InvalidSecret:
            return _Outcome(None, False, "the owner's webhook secret is malformed", final=True)
        headers["user-agent"] = USER_AGENT
        try:
            # httpx's timeout applies per read; the outer one bounds the whole exchange against a trickling server.
            async with asyncio.timeout(self._timeout):
                url = httpx.URL(d.url)
                if url.scheme not in _DEFAULT_PORTS or not url.raw_host:
                    raise httpx.UnsupportedProtocol("not an absolute http(s) URL")
                host = url.raw_host.decode("ascii")  # IDNA-encoded; an IPv6 literal without its brackets
                port = url.port or _DEFAULT_PORTS[url.scheme]
                addresses = await vetted_addresses(host, port, self._resolve, allow_private=self._allow_private)
                response = await self._post(url, addresses, body, headers)
                # Streamed and closed unread: only the status matters, and a huge response body must cost nothing.
                await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return _Outcome(None, False, f"timed out after {self._timeout:g}s")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return _Outcome(None, False, "the webhook URL is not usable", final=True)
        except NonPublicAddress:
            # Final: retrying cannot make it safe, and a name that flips between addresses must not get 8 tries.
            return _Outcome(None, False, "the webhook URL resolves to a non-public address", final=True)
        except socket.gaierror:
            return _Outcome(None, False, "the webhook host did not resolve")  # DNS can recover: retried
        except (httpx.HTTPError, OSError) as exc:
            # The exception text can quote the URL, which may carry a token: only its type is kept.
            return _Outcome(None, False, f"connection failed ({type(exc).__name__})")
        status = response.status_code
        if 200 <= status < 300:
            return _Outcome(status, True)
        if status == 410:
            return _Outcome(status, False, "HTTP 410 Gone: the receiver asked to stop", final=True)
        retry_after = parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
        return _Outcome(status, False, f"HTTP {status}", retry_after=retry_after)

    async def _post(
        self, url: httpx.URL, addresses: list[IPAddress], body: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        """POST to `url` at one of its vetted `addresses`, in the resolver's order, the next one when a connection
        cannot be made (an IPv6 address with no route, then an IPv4 one, say). The URL names the address, so nothing
        resolves the host again; the Host header and, for https, the `sni_hostname` extension (httpx's documented
        way to connect to an explicit IP) keep the host name for the receiver, SNI and the certificate check."""
        headers = {**headers, "host": url.netloc.decode("ascii")}
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        failure: httpx.ConnectError | None = None
        for address in addresses:
            pinned = url.copy_with(host=str(address))
            request = self._client.build_request("POST", pinned, content=body, headers=headers, extensions=extensions)
            try:
                return await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None  # vetted_addresses never returns an empty list
        raise failure

    async def _record(self, d: _Delivery, attempt: int, outcome: _Outcome, next_at: float | None) -> bool:
        """Record the attempt; False when it was already recorded, i.e. another delivery of this event owns it."""
        fact = WebhookAttempted(
            event_id=attempt_event_id(d.job_id, d.seq, attempt),
            job_id=d.job_id,
            webhook_id=d.webhook_id,
            event=d.event,
            attempt=attempt,
            status_code=outcome.status_code,
            ok=outcome.ok,
            error=outcome.error,
            next_attempt_at=next_at,
        )
        fields = {
            "job_id": d.job_id,
            "webhook_id": d.webhook_id,
            "sse_event": d.event,  # not "event": structlog takes that for the message
            "attempt": attempt,
            "status_code": outcome.status_code,
        }
        try:
            recorded = await self._rt.recorder.record(fact)
        except Exception:
            # The attempt happened whether or not the store took the record; carry on with the schedule.
            log.exception("webhook.record_failed", **fields)
            return True
        if not recorded.fresh:
            log.warning("webhook.duplicate_delivery_stopped", **fields)
            return False
        if outcome.ok:
            log.info("webhook.delivered", **fields)
        elif next_at is None:
            log.warning("webhook.gave_up", error=outcome.error, **fields)
        else:
            log.info("webhook.retry_scheduled", error=outcome.error, retry_in=round(next_at - time.time(), 3), **fields)
        return True


def _attempts(history: list[RecordedEvent], webhook_id: str) -> list[WebhookAttempted]:
    return [r.event for r in history if isinstance(r.event, WebhookAttempted) and r.event.webhook_id == webhook_id]


def _finished(attempts: list[WebhookAttempted]) -> bool:
    """Delivered, or given up on."""
    return any(a.ok or a.next_attempt_at is None for a in attempts)


def _resume_point(last: WebhookAttempted | None) -> tuple[int, float]:
    """The attempt number to make next, and how long until it is due."""
    if last is None:
        return 1, 0.0
    due_in = 0.0 if last.next_attempt_at is None else max(0.0, last.next_attempt_at - time.time())
    return last.attempt + 1, due_in
