"""A full disk: a step that meets it ends its job with an `error` that says so; a failure the full disk will not let
be recorded is recorded once there is room again, so the job's slot frees and the user's next job runs; a new job
asked for on a full disk is refused with 507. Real full disks (a small tmpfs, root only) and a store that refuses."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.commands import RenderClip
from contracts.events import AnyEvent, ClipRendered, JobFailed, JobStarted, RecordedEvent
from services.renderer.local import LocalClipRenderer
from services.renderer.port import RenderedClip
from services.runtime.failures import public_reason
from services.runtime.ffmpeg import FfmpegError, run_ffmpeg
from services.runtime.store.sqlite import SqliteEventStore
from tests.conftest import start_server
from tests.disk import small_disk
from tests.e2e.flow import post_stream
from tests.gateway.jobs_client import client_for, read_events, wait_for_status
from tests.services.test_failure_messages import JsonLogs, json_logs

__all__ = ["json_logs"]  # the fixture, for the tests below

LINE = "Wake up radiant, every single morning."  # one clip
OTHER = "Glow keeps working while you sleep."
DISK_FULL = "the server ran out of disk space; try again later"


async def test_a_step_that_meets_a_full_disk_ends_the_job_with_an_error_saying_so(
    tmp_path: Path, avatar_data_uri: str, json_logs: JsonLogs
) -> None:
    home = tmp_path / "home"
    with small_disk(home / "work", 8) as work:  # the services' work folders: where the clip is encoded
        work.fill()
        async for server in start_server(home):
            result = await post_stream(server.url, {"script": LINE, "character_image": avatar_data_uri}, server.token)
    assert result.names[-1] == "error", result.raw
    error = result.data("error")[0]
    assert error["message"] == f"Failed to generate clip 1/1: {DISK_FULL}", error
    assert error["step"] == 2
    [record] = [r for r in json_logs() if r.get("event") == "renderer.failed"]
    assert record["level"] == "error" and record["disk_full"] is True
    assert "No space left on device" in record["exception"]  # the operator gets what the disk said


class GatedRenderer:
    """The local renderer, holding the clip of LINE until the test opens the gate (after filling the disk)."""

    def __init__(self) -> None:
        self.inner = LocalClipRenderer()
        self.waiting = asyncio.Event()
        self.gate = asyncio.Event()

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        if command.clip.line == LINE:
            self.waiting.set()
            await self.gate.wait()
        return await self.inner.render(command, avatar, out)


async def test_a_failure_the_full_disk_refuses_is_recorded_once_there_is_room_and_frees_the_slot(
    tmp_path: Path, avatar_data_uri: str, json_logs: JsonLogs
) -> None:
    home = tmp_path / "home"
    renderer = GatedRenderer()
    with small_disk(home, 64) as disk:  # everything: the event store, the objects, the work folders
        async for server in start_server(home, {"renderer": renderer}, max_running_per_user=1):
            async with client_for(server.url, server.token) as client:
                first = (await client.post("/api/ad-agent/create", json=_body(avatar_data_uri, LINE))).json()
                await asyncio.wait_for(renderer.waiting.wait(), 60)
                # The same user's next job waits for the slot the first one holds.
                second = (await client.post("/api/ad-agent/create", json=_body(avatar_data_uri, OTHER))).json()
                disk.fill()
                renderer.gate.set()

                # The clip meets the full disk, and so does its JobFailed: the job cannot end yet...
                await _until(partial(_logged, json_logs, "job.failure_not_recorded", first["job_id"], times=3))
                assert (await client.get(f"/api/ad-agent/jobs/{first['job_id']}")).json()["status"] == "running"
                assert (await client.get(f"/api/ad-agent/jobs/{second['job_id']}")).json()["status"] == "queued"

                # ...until space is freed: then the failure is in, the slot frees and the next job runs to the end.
                disk.free()
                events = await asyncio.wait_for(read_events(client, first["events_url"]), 60)
                assert events[-1].event == "error", [(e.event, e.data) for e in events]
                assert events[-1].json()["message"] == f"Failed to generate clip 1/1: {DISK_FULL}"
                done = await asyncio.wait_for(read_events(client, second["events_url"]), 120)
                assert done[-1].event == "complete", [(e.event, e.data) for e in done]
                # A new job after space came back completes as well.
                third = (await client.post("/api/ad-agent/create", json=_body(avatar_data_uri, LINE))).json()
                assert (await wait_for_status(client, third["job_id"], "completed"))["progress"] == 100
            history = await server.stack.runtime.history(first["job_id"])
            assert len(history.all(JobFailed)) == 1
            assert not history.has(ClipRendered)


async def test_creating_a_job_on_a_full_disk_answers_507_and_logs_it(
    tmp_path: Path, avatar_data_uri: str, json_logs: JsonLogs
) -> None:
    home = tmp_path / "home"
    with small_disk(home, 16) as disk:
        async for server in start_server(home):
            body = _body(avatar_data_uri, LINE)
            async with client_for(server.url, server.token) as client:
                disk.fill()
                for path in ("/api/ad-agent/create", "/api/ad-agent/create-stream"):
                    response = await client.post(path, json=body)
                    assert response.status_code == 507, (path, response.status_code, response.text)
                    assert response.json() == {
                        "status_code": 507,
                        "detail": "the server is out of disk space; try again later",
                    }
                records = [r for r in json_logs() if r.get("event") == "gateway.create_out_of_disk_space"]
                assert len(records) == 2 and {r["level"] for r in records} == {"error"}
                assert all("No space left on device" in r["exception"] for r in records)
                assert (await client.get("/api/ad-agent/jobs")).json()["jobs"] == []  # nothing half made

                disk.free()
                created = await client.post("/api/ad-agent/create", json=body)
                assert created.status_code == 202, created.text


class RefusingStore:
    """The SQLite event store, refusing the first `times` JobFailed appends as a full disk does (ENOSPC)."""

    def __init__(self, inner: SqliteEventStore, times: int) -> None:
        self.inner = inner
        self.times = times
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append(self, event: AnyEvent) -> RecordedEvent:
        if isinstance(event, JobFailed) and self.refused < self.times:
            self.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device", "events.sqlite3-wal")
        return await self.inner.append(event)


class NoSpaceRenderer:
    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        raise OSError(errno.ENOSPC, "No space left on device", str(out))


async def test_a_failure_the_store_refuses_several_times_is_still_recorded(
    tmp_path: Path, avatar_data_uri: str, json_logs: JsonLogs
) -> None:
    home = tmp_path / "home"
    # More refusals than the bus has deliveries (5): redelivery alone cannot get the failure recorded.
    store = RefusingStore(SqliteEventStore(home / "events.sqlite3"), times=6)
    async for server in start_server(home, {"renderer": NoSpaceRenderer(), "store": store}):
        result = await asyncio.wait_for(
            post_stream(server.url, {"script": LINE, "character_image": avatar_data_uri}, server.token), 60
        )
        assert result.names[-1] == "error", result.raw
        assert result.data("error")[0]["message"] == f"Failed to generate clip 1/1: {DISK_FULL}"
        job_id = result.data("error")[0]["job_id"]
        history = await server.stack.runtime.history(job_id)
        assert len(history.all(JobFailed)) == 1 and history.has(JobStarted)
    assert store.refused == 6
    retries = [r for r in json_logs() if r.get("event") == "job.failure_not_recorded"]
    assert [r["attempt"] for r in retries] == [1, 2, 3, 4, 5, 6]
    assert {r["level"] for r in retries} == {"error"} and all(r["job_id"] == job_id for r in retries)


async def test_every_form_a_full_disk_takes_is_told_as_such(tmp_path: Path) -> None:
    from services.runtime.errors import out_of_disk_space  # here, so the tests above also run against older code

    # ffmpeg writing where there is no room says so only in its stderr.
    with pytest.raises(FfmpegError) as ffmpeg:
        await run_ffmpeg("-f", "lavfi", "-i", "anullsrc", "-t", "1", "-f", "wav", "/dev/full")
    # SQLite whose file cannot grow: SQLITE_FULL, "database or disk is full".
    db = sqlite3.connect(tmp_path / "small.sqlite3")
    db.execute("CREATE TABLE t (x BLOB)")
    db.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as sqlite_full:
        db.execute("INSERT INTO t VALUES (?)", (b"\0" * 100_000,))
    db.close()
    try:
        raise RuntimeError("could not store the clip") from OSError(errno.ENOSPC, "No space left on device")
    except RuntimeError as exc:
        wrapped = exc
    full = [
        OSError(errno.ENOSPC, "No space left on device", "/srv/adagent/work/x.mp4"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        ffmpeg.value,
        sqlite_full.value,
        asyncpg.exceptions.DiskFullError('could not extend file "base/5/16384": No space left on device'),
        wrapped,
    ]
    for error in full:
        assert out_of_disk_space(error), repr(error)
        assert public_reason(error, "test.failed") == DISK_FULL
    for error in (OSError(errno.EACCES, "Permission denied"), sqlite3.OperationalError("no such table: t")):
        assert not out_of_disk_space(error)
        assert public_reason(error, "test.failed").startswith("internal error (ref ")


def _body(avatar: str, script: str) -> dict[str, Any]:
    return {"script": script, "character_image": avatar}


def _logged(json_logs: JsonLogs, event: str, job_id: str, *, times: int) -> bool:
    return sum(1 for r in json_logs() if r.get("event") == event and r.get("job_id") == job_id) >= times


async def _until(condition: Any, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "not met in time"
        await asyncio.sleep(0.05)
