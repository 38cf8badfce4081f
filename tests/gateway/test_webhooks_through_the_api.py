"""A job created over HTTP with a webhook: the receiver verifies each signature with the user's secret (fetched from
the API) and the gateway retries after 500s, recording every attempt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contracts.events import WebhookAttempted
from tests.conftest import start_server
from tests.gateway.jobs_client import body, client_for, wait_for_status
from tests.gateway.webhook_receiver import Receiver, spec_signature_ok


async def test_signed_webhooks_with_retries_after_500s(
    tmp_path: Path, avatar_data_uri: str, receiver: Receiver
) -> None:
    receiver.replies = [(500, {}), (500, {})]
    # The receiver listens on 127.0.0.1, which the gateway refuses unless told receivers may be private.
    async for server in start_server(tmp_path / "home", webhook_delays=(0.1, 0.2, 0.4), webhook_allow_private=True):
        async with client_for(server.url, server.token) as client:
            secret = (await client.get("/api/auth/webhook-secret")).json()["secret"]
            created = await client.post(
                "/api/ad-agent/create",
                json=body(avatar_data_uri, webhook_url=receiver.url, webhook_events=["step1", "complete"]),
            )
            job_id = created.json()["job_id"]
            await wait_for_status(client, job_id, "completed")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while len(receiver.requests) < 4:  # step1: 500, 500, then 200; complete: 200
                assert loop.time() < deadline, receiver.requests
                await asyncio.sleep(0.05)
        assert all(spec_signature_ok(secret, r.headers, r.body) for r in receiver.requests)
        first_type = receiver.requests[0].json["type"]
        same_event = [r for r in receiver.requests if r.json["type"] == first_type]
        assert len(same_event) == 3  # two 500s, then delivered
        assert len({r.headers["webhook-id"] for r in same_event}) == 1
        types = sorted({r.json["type"] for r in receiver.requests})
        assert types == ["complete", "step1"]
        assert all(r.json["data"]["job_id"] == job_id for r in receiver.requests)
        history = await server.stack.runtime.store.history(job_id)
        attempts = [r.event for r in history if isinstance(r.event, WebhookAttempted)]
        assert [(a.event, a.attempt, a.ok) for a in attempts if a.event == first_type] == [
            (first_type, 1, False),
            (first_type, 2, False),
            (first_type, 3, True),
        ]
        assert any(a.event == "complete" and a.ok for a in attempts)
