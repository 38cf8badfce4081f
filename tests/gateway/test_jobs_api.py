"""Jobs that outlive the connection, over real HTTP: create, status, list, resumable SSE, cancel, WebSocket,
idempotency, priority and limits, and isolation between users."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from contracts.commands import RenderClip
from contracts.events import ClipRendered, JobCancelled, JobStarted
from services.renderer.local import LocalClipRenderer
from services.renderer.port import RenderedClip
from tests.conftest import Server, start_server
from tests.gateway.jobs_client import body, client_for, read_events, wait_for_status

LONG_SCRIPT = (
    "Our first line is long enough to fill most of one clip on its own. "
    "Then a second line arrives, just as long, so it needs a clip of its own. "
    "A third line follows with a few more words than the others, to be sure. "
    "And the fourth line closes the ad with a warm and friendly goodbye."
)


class GatedRenderer:
    """The real renderer, but each clip waits for the gate: lets a test hold a job in step 2."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started: list[tuple[str, int]] = []
        self.inner = LocalClipRenderer()

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip | float:
        self.started.append((command.job_id, command.clip.index))
        await self.gate.wait()
        return await self.inner.render(command, avatar, out)


async def test_create_answers_202_then_the_job_runs_to_completion(server: Server, avatar_data_uri: str) -> None:
    async with client_for(server.url, server.token) as client:
        response = await client.post("/api/ad-agent/create", json=body(avatar_data_uri))
        assert response.status_code == 202, response.text
        created = response.json()
        job_id = created["job_id"]
        assert set(created) >= {"job_id", "status_url", "events_url"}
        assert response.headers["location"] == created["status_url"]
        events = await read_events(client, created["events_url"])
        assert [m.event for m in events][-1] == "complete"
        state = (await client.get(created["status_url"])).json()
        assert state["status"] == "completed" and state["progress"] == 100
        # The same video; each read signs its own link (see test_links_are_signed_afresh_at_each_read).
        assert state["final_video_url"].split("?")[0] == events[-1].json()["final_video_url"].split("?")[0]
        assert state["clips_done"] == state["total_clips"] >= 1
        listed = (await client.get("/api/ad-agent/jobs")).json()
        assert listed["jobs"][0]["job_id"] == job_id


async def test_list_is_newest_first_with_a_cursor(server: Server, avatar_data_uri: str) -> None:
    async with client_for(server.url, server.token) as client:
        ids = []
        for _ in range(3):
            ids.append((await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()["job_id"])
        page1 = (await client.get("/api/ad-agent/jobs", params={"limit": 2})).json()
        assert [j["job_id"] for j in page1["jobs"]] == ids[::-1][:2]
        page2 = (await client.get("/api/ad-agent/jobs", params={"limit": 2, "cursor": page1["next_cursor"]})).json()
        assert [j["job_id"] for j in page2["jobs"]] == ids[:1]
        assert page2["next_cursor"] is None
        bad = await client.get("/api/ad-agent/jobs", params={"limit": 0})
        assert bad.status_code == 422 and bad.json()["field"] == "limit"


async def test_a_dropped_client_resumes_with_last_event_id_and_misses_nothing(
    server: Server, avatar_data_uri: str
) -> None:
    async with client_for(server.url, server.token) as client:
        created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri, script=LONG_SCRIPT))).json()
        url = created["status_url"] + "/events"
        first = await read_events(client, url, stop_after=3)  # the connection drops here
        rest = await read_events(client, url, headers={"Last-Event-ID": first[-1].id or ""})
        again = await read_events(client, url)  # a fresh reader from the start, for comparison
        got = [(m.id, m.event, m.data) for m in first + rest]
        assert got == [(m.id, m.event, m.data) for m in again]
        assert len({m.id for m in first + rest}) == len(got)  # exactly once
        assert got[-1][1] == "complete"
        # Browsers resume through the query string; after the terminal event there is nothing more: 204.
        done = await client.get(url, params={"last_event_id": again[-1].id})
        assert done.status_code == 204


async def test_create_stream_disconnect_leaves_the_job_running(server: Server, avatar_data_uri: str) -> None:
    async with client_for(server.url, server.token) as client:
        async with client.stream("POST", "/api/ad-agent/create-stream", json=body(avatar_data_uri)) as response:
            job_id = response.headers["x-job-id"]
        state = await wait_for_status(client, job_id, "completed")
        assert state["final_video_url"]


async def test_events_url_token_works_without_a_header_only_for_its_job(server: Server, avatar_data_uri: str) -> None:
    async with client_for(server.url, server.token) as client:
        created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
        other = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
    async with client_for(server.url, None) as anonymous:
        events = await read_events(anonymous, created["events_url"])
        assert events[-1].event == "complete"
        assert events[0].retry is not None  # the browser's reconnect delay
        token = created["events_url"].split("token=")[1]
        wrong_job = await anonymous.get(f"/api/ad-agent/jobs/{other['job_id']}/events", params={"token": token})
        assert wrong_job.status_code == 401
        status_with_token = await anonymous.get(created["status_url"], params={"token": token})
        assert status_with_token.status_code == 401  # the URL token opens the events route only


async def test_cancel_during_step_2_stops_the_job(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = GatedRenderer()
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, render_concurrency=1):
        async with client_for(server.url, server.token) as client:
            created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri, script=LONG_SCRIPT))).json()
            job_id = created["job_id"]
            async with client.stream("GET", created["events_url"]) as stream:
                from services.cli.sse_client import iter_sse

                names = []
                async for message in iter_sse(stream):
                    if not message.data:
                        continue
                    names.append(message.event)
                    if message.event == "step2_clip":
                        cancelled = await client.post(f"/api/ad-agent/jobs/{job_id}/cancel")
                        assert cancelled.status_code == 200
                        assert cancelled.json()["status"] == "cancelled"
                        renderer.gate.set()  # the clip in flight finishes, and is dropped
            assert names[-1] == "cancelled"
            again = await client.post(f"/api/ad-agent/jobs/{job_id}/cancel")  # idempotent
            assert again.status_code == 200 and again.json()["status"] == "cancelled"
            await asyncio.sleep(1.0)
            history = await server.stack.runtime.store.history(job_id)
            cancel_at = next(r.seq for r in history if isinstance(r.event, JobCancelled))
            assert not [r for r in history if isinstance(r.event, ClipRendered) and r.seq > cancel_at]
            assert len(renderer.started) == 1  # no new clip started after the cancel
            assert (await client.get(f"/api/ad-agent/jobs/{job_id}")).json()["status"] == "cancelled"


async def test_queued_jobs_start_by_priority_then_first_come(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = GatedRenderer()
    async for server in start_server(
        tmp_path / "home", {"renderer": renderer}, max_running_jobs=1, max_running_per_user=1
    ):
        async with client_for(server.url, server.token) as client:
            blocker = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()["job_id"]
            await wait_for_status(client, blocker, "running")
            order = {}
            for name, priority in [("low", "low"), ("normal1", "normal"), ("high", "high"), ("normal2", "normal")]:
                response = await client.post("/api/ad-agent/create", json=body(avatar_data_uri, priority=priority))
                order[response.json()["job_id"]] = name
            positions = {
                order[j]: (await client.get(f"/api/ad-agent/jobs/{j}")).json()["queue_position"] for j in order
            }
            assert positions == {"high": 1, "normal1": 2, "normal2": 3, "low": 4}
            renderer.gate.set()
            for job_id in order:
                await wait_for_status(client, job_id, "completed", within=180)
            rt = server.stack.runtime
            starts = []
            for job_id in order:
                history = await rt.store.history(job_id)
                started = next(r for r in history if isinstance(r.event, JobStarted))
                starts.append((started.recorded_at, order[job_id]))
            assert [name for _, name in sorted(starts)] == ["high", "normal1", "normal2", "low"]


async def test_per_user_queue_cap_answers_429_with_retry_after(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = GatedRenderer()
    async for server in start_server(
        tmp_path / "home", {"renderer": renderer}, max_running_jobs=1, max_running_per_user=1, max_queued_per_user=2
    ):
        async with client_for(server.url, server.token) as client:
            statuses = [
                (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).status_code for _ in range(4)
            ]
            assert statuses[:3] == [202, 202, 202]  # one running, two queued
            refused = await client.post("/api/ad-agent/create", json=body(avatar_data_uri))
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            stream = await client.post("/api/ad-agent/create-stream", json=body(avatar_data_uri))
            assert stream.status_code == 429
            renderer.gate.set()


async def test_idempotency_key_gives_the_same_job_and_refuses_a_different_body(
    server: Server, avatar_data_uri: str
) -> None:
    async with client_for(server.url, server.token) as client:
        headers = {"Idempotency-Key": "order-42"}
        first = await client.post("/api/ad-agent/create", json=body(avatar_data_uri), headers=headers)
        second = await client.post("/api/ad-agent/create", json=body(avatar_data_uri), headers=headers)
        assert first.status_code == 202 and second.status_code == 200
        assert first.json()["job_id"] == second.json()["job_id"]
        changed = await client.post(
            "/api/ad-agent/create", json=body(avatar_data_uri, priority="high"), headers=headers
        )
        assert changed.status_code == 409
        assert changed.json()["field"] == "Idempotency-Key"
        assert len((await client.get("/api/ad-agent/jobs")).json()["jobs"]) == 1


async def test_websocket_carries_events_and_takes_a_cancel(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = GatedRenderer()
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, render_concurrency=1):
        async with client_for(server.url, server.token) as client:
            created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri, script=LONG_SCRIPT))).json()
        ws_url = server.url.replace("http://", "ws://") + created["websocket_url"]
        received: list[dict[str, Any]] = []
        async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {server.token}"}) as ws:
            async for raw in ws:
                message = json.loads(raw)
                received.append(message)
                if message["event"] == "step2_clip":
                    await ws.send(json.dumps({"action": "cancel"}))
                    renderer.gate.set()
                if message["event"] in ("complete", "error", "cancelled"):
                    break
        names = [m["event"] for m in received]
        assert names[:3] == ["queued", "step1", "step1_complete"]
        assert names[-1] == "cancelled"
        ids = [m["id"] for m in received]
        assert ids == sorted(ids)
        # Resume from a sequence number: only what came after it.
        token = created["events_url"].split("token=")[1]
        resume = f"{ws_url}?last_event_id={ids[1]}&token={token}"
        async with websockets.connect(resume) as ws:
            replay = [json.loads(raw) async for raw in ws]
        assert [m["id"] for m in replay] == ids[2:]


async def test_no_credential_or_a_bad_one_is_401(server: Server) -> None:
    routes = [
        ("POST", "/api/ad-agent/create-stream"),
        ("POST", "/api/ad-agent/create"),
        ("GET", "/api/ad-agent/jobs"),
        ("GET", "/api/ad-agent/jobs/ad_1"),
        ("GET", "/api/ad-agent/jobs/ad_1/events"),
        ("POST", "/api/ad-agent/jobs/ad_1/cancel"),
    ]
    for token in (None, "not-a-token", "adk_000000000000_nope"):
        async with client_for(server.url, token) as client:
            for method, path in routes:
                response = await client.request(method, path, json={})
                assert response.status_code == 401, (token, method, path, response.text)
                assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


async def test_another_users_job_is_indistinguishable_from_a_missing_one(server: Server, avatar_data_uri: str) -> None:
    bob = await server.token_for("bob")
    async with client_for(server.url, server.token) as ann:
        created = (await ann.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
        job_id = created["job_id"]
        await wait_for_status(ann, job_id, "completed")
    async with client_for(server.url, bob) as client:
        for method, template in [
            ("GET", "/api/ad-agent/jobs/{}"),
            ("GET", "/api/ad-agent/jobs/{}/events"),
            ("POST", "/api/ad-agent/jobs/{}/cancel"),
        ]:
            theirs = await client.request(method, template.format(job_id))
            missing = await client.request(method, template.format("ad_1000000000000000"))
            assert theirs.status_code == missing.status_code == 404
            assert theirs.json()["detail"].replace(job_id, "X") == missing.json()["detail"].replace(
                "ad_1000000000000000", "X"
            )
        assert (await client.get("/api/ad-agent/jobs")).json()["jobs"] == []
        # ann's stream token does not open the job for anyone else's session either
        token = created["events_url"].split("token=")[1]
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(
                server.url.replace("http://", "ws://") + f"/api/ad-agent/jobs/{job_id}/ws",
                additional_headers={"Authorization": f"Bearer {bob}"},
            ) as ws:
                await ws.recv()
        _ = token
    async with client_for(server.url, server.token) as ann:
        state = (await ann.get(f"/api/ad-agent/jobs/{job_id}")).json()
        assert state["status"] == "completed"  # bob's cancel changed nothing


async def test_malformed_requests_get_4xx_naming_the_field(server: Server, avatar_data_uri: str) -> None:
    async with client_for(server.url, server.token) as client:
        cases = [
            (body(avatar_data_uri, priority="urgent"), "priority"),
            (body(avatar_data_uri, webhook_url="ftp://x"), "webhook_url"),
            (body(avatar_data_uri, webhook_events=["nope"]), "webhook_events"),
        ]
        for payload, field in cases:
            response = await client.post("/api/ad-agent/create", json=payload)
            assert response.status_code == 422 and response.json()["field"] == field
        huge = await client.post(
            "/api/ad-agent/create", content=b"x" * 20_000_000, headers={"content-type": "application/json"}
        )
        assert huge.status_code == 413
        bad_resume = await client.get("/api/ad-agent/jobs/ad_1/events", headers={"Last-Event-ID": "x"})
        assert bad_resume.status_code in (400, 404)
    _ = httpx


async def test_quiet_streams_get_keep_alive_comments(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = GatedRenderer()
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, sse_keepalive_seconds=0.3):
        async with client_for(server.url, server.token) as client:
            created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
            comments = 0
            async with client.stream("GET", created["events_url"]) as response:
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        comments += 1
                        if comments == 2:
                            renderer.gate.set()
                    if line.startswith("event: complete"):
                        break
            assert comments >= 2


async def test_links_are_signed_afresh_at_each_read(tmp_path: Path, avatar_data_uri: str) -> None:
    """A link expires; the job does not: a client that comes back later gets links that work, from every read."""
    async for server in start_server(tmp_path / "home", url_ttl_seconds=2):
        async with client_for(server.url, server.token) as client:
            created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
            first = (await read_events(client, created["events_url"]))[-1].json()
            assert (await client.get(first["final_video_url"])).status_code == 200
            await asyncio.sleep(3)  # past the 2 s lifetime of every link signed so far
            assert (await client.get(first["final_video_url"])).status_code == 403
            assert (await client.get(first["captions_url"])).status_code == 403

            state = (await client.get(created["status_url"])).json()
            replayed = (await read_events(client, created["events_url"]))[-1].json()
            listed = (await client.get("/api/ad-agent/jobs")).json()["jobs"][0]
            for read in (state, replayed, listed):
                video = await client.get(read["final_video_url"])
                assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
                captions = await client.get(read["captions_url"])
                assert captions.status_code == 200 and captions.text.startswith("WEBVTT")
                assert read["final_video_url"].split("?")[0] == first["final_video_url"].split("?")[0]


async def test_a_view_from_before_the_references_were_kept_still_gets_a_fresh_link(
    tmp_path: Path, avatar_data_uri: str
) -> None:
    import sqlite3

    import msgspec

    async for server in start_server(tmp_path / "home", url_ttl_seconds=2):
        async with client_for(server.url, server.token) as client:
            created = (await client.post("/api/ad-agent/create", json=body(avatar_data_uri))).json()
            await read_events(client, created["events_url"])
            view = await server.stack.runtime.store.job(created["job_id"])
            assert view is not None and view.final_ref is not None
            old = {k: v for k, v in msgspec.to_builtins(view).items() if k not in ("final_ref", "captions_ref")}
            with sqlite3.connect(server.settings.sqlite_path) as db:  # as an older version wrote it
                db.execute("UPDATE jobs SET view = ? WHERE job_id = ?", (msgspec.json.encode(old), view.job_id))
            await asyncio.sleep(3)  # the recorded links have expired
            state = (await client.get(created["status_url"])).json()
            assert (await client.get(state["final_video_url"])).status_code == 200
            assert (await client.get(state["captions_url"])).status_code == 200
