"""One contract, two stores: the SQLite file (embedded) and PostgreSQL (the real server on 127.0.0.1:5432)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest

from contracts.events import ClipRendered, JobCancelled, JobCompleted, JobRequested, JobStarted, PromptingStarted
from services.runtime.store.port import DuplicateEvent, EventStore, IdempotencyConflict
from services.runtime.store.sqlite import SqliteEventStore
from tests.brokers import DATABASE_URL, fresh_namespace

MakeStore = Callable[[], Awaitable[EventStore]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStore]:
    schema = fresh_namespace("store")
    opened: list[EventStore] = []

    async def make() -> EventStore:
        store: EventStore
        if request.param == "sqlite":
            store = SqliteEventStore(tmp_path / "events.sqlite3")
        else:
            from services.runtime.store.postgres import PostgresEventStore

            store = PostgresEventStore(DATABASE_URL, schema=schema)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
    if request.param == "postgres":
        from services.runtime.store.postgres import drop_schema

        await drop_schema(DATABASE_URL, schema)


def _requested(job: str) -> JobRequested:
    return JobRequested(
        event_id=f"{job}/requested",
        job_id=job,
        script="Hi.",
        avatar_ref="file:///a.png",
        character_name="c",
        voice_id=None,
        aspect_ratio="16:9",
        resolution="720p",
    )


def _clip(job: str, i: int) -> ClipRendered:
    return ClipRendered(
        event_id=f"{job}/clip/{i}", job_id=job, index=i, total_clips=9, clip_ref=f"file:///{i}.mp4", duration_s=1.5
    )


async def test_append_numbers_each_jobs_events_from_one(make_store: MakeStore) -> None:
    store = await make_store()
    a1 = await store.append(_requested("ad_1"))
    b1 = await store.append(_requested("ad_2"))
    a2 = await store.append(PromptingStarted(event_id="ad_1/prompting", job_id="ad_1"))
    assert (a1.seq, b1.seq, a2.seq) == (1, 1, 2)
    history = await store.history("ad_1")
    assert [r.seq for r in history] == [1, 2]
    assert history[0].event == _requested("ad_1")
    assert isinstance(history[1].event, PromptingStarted)
    assert [r.seq for r in await store.history("ad_1", after_seq=1)] == [2]


async def test_duplicate_event_id_is_rejected_and_names_the_original(make_store: MakeStore) -> None:
    store = await make_store()
    await store.append(_requested("ad_1"))
    first = await store.append(_clip("ad_1", 1))
    with pytest.raises(DuplicateEvent) as caught:
        await store.append(_clip("ad_1", 1))
    assert caught.value.existing.seq == first.seq
    assert caught.value.existing.event == first.event
    assert len(await store.history("ad_1")) == 2


async def test_concurrent_appends_get_distinct_gapless_sequence_numbers(make_store: MakeStore) -> None:
    writers = [await make_store() for _ in range(3)]
    await writers[0].append(_requested("ad_9"))
    results = await asyncio.gather(
        *(writers[i % 3].append(_clip("ad_9", i)) for i in range(1, 31)), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert [r.seq for r in await writers[1].history("ad_9")] == list(range(1, 32))


async def test_history_survives_reopening(make_store: MakeStore) -> None:
    store = await make_store()
    await store.append(_requested("ad_5"))
    await store.close()
    again = await make_store()
    assert [r.event.event_id for r in await again.history("ad_5")] == ["ad_5/requested"]


async def test_job_ids_newest_first(make_store: MakeStore) -> None:
    store = await make_store()
    for job in ("ad_1", "ad_2", "ad_3"):
        await store.append(_requested(job))
    await store.append(PromptingStarted(event_id="ad_1/prompting", job_id="ad_1"))
    assert await store.job_ids() == ["ad_3", "ad_2", "ad_1"]


async def test_jobs_active_since_a_moment(make_store: MakeStore) -> None:
    store = await make_store()
    first = await store.append(_requested("ad_old"))
    await store.append(_requested("ad_new"))
    await asyncio.sleep(0.05)
    later = await store.append(PromptingStarted(event_id="ad_new/prompting", job_id="ad_new"))
    assert sorted(await store.job_ids_active_since(first.recorded_at)) == ["ad_new", "ad_old"]
    assert await store.job_ids_active_since(later.recorded_at) == ["ad_new"]
    assert await store.job_ids_active_since(later.recorded_at + 60) == []


async def test_unknown_job_has_empty_history(make_store: MakeStore) -> None:
    store = await make_store()
    assert await store.history("ad_404") == []


def _job(job: str, owner: str = "ann", priority: str = "normal", key: str | None = None) -> JobRequested:
    return JobRequested(
        event_id=f"{job}/requested",
        job_id=job,
        script="Hi.",
        avatar_ref="file:///a.png",
        character_name="c",
        voice_id=None,
        aspect_ratio="16:9",
        resolution="720p",
        owner=owner,
        priority=priority,
        idempotency_key=key,
    )


async def test_job_view_follows_the_events_in_the_same_append(make_store: MakeStore) -> None:
    store = await make_store()
    await store.append(_job("ad_1"))
    view = await store.job("ad_1")
    assert view is not None and (view.status, view.owner, view.progress) == ("queued", "ann", 0)
    await store.append(JobStarted(event_id="ad_1/started", job_id="ad_1"))
    await store.append(PromptingStarted(event_id="ad_1/prompting", job_id="ad_1"))
    view = await store.job("ad_1")
    assert view is not None and (view.status, view.step, view.progress) == ("running", 1, 10)
    await store.append(
        JobCompleted(event_id="ad_1/completed", job_id="ad_1", final_ref="r", final_video_url="http://v", duration_s=1)
    )
    await store.append(JobCancelled(event_id="ad_1/cancelled", job_id="ad_1"))  # too late: completed stays
    view = await store.job("ad_1")
    assert view is not None and (view.status, view.final_video_url, view.progress) == ("completed", "http://v", 100)
    assert await store.job("ad_404") is None


async def test_jobs_list_is_per_owner_newest_first_with_a_cursor(make_store: MakeStore) -> None:
    store = await make_store()
    for i in range(1, 6):
        await store.append(_job(f"ad_{i}", owner="ann"))
        await store.append(_job(f"ad_{i}0", owner="bob"))
    first = await store.jobs("ann", limit=2)
    assert [j.job_id for j in first] == ["ad_5", "ad_4"]
    second = await store.jobs("ann", after=first[-1].job_id, limit=2)
    assert [j.job_id for j in second] == ["ad_3", "ad_2"]
    assert [j.job_id for j in await store.jobs("ann", after="ad_20", limit=2)] == []  # bob's cursor means nothing
    assert {j.owner for j in await store.jobs("bob", limit=50)} == {"bob"}


async def test_queued_jobs_come_by_priority_then_first_come(make_store: MakeStore) -> None:
    store = await make_store()
    for job, priority in [("ad_1", "low"), ("ad_2", "normal"), ("ad_3", "high"), ("ad_4", "normal"), ("ad_5", "high")]:
        await store.append(_job(job, priority=priority))
    await store.append(JobStarted(event_id="ad_5/started", job_id="ad_5"))
    assert [j.job_id for j in await store.queued_jobs()] == ["ad_3", "ad_2", "ad_4", "ad_1"]
    assert [j.job_id for j in await store.running_jobs()] == ["ad_5"]


async def test_a_reused_idempotency_key_appends_nothing_and_names_the_first_job(make_store: MakeStore) -> None:
    store = await make_store()
    await store.append(_job("ad_1", key="k1"))
    with pytest.raises(IdempotencyConflict) as caught:
        await store.append(_job("ad_2", key="k1"))
    assert caught.value.existing.job_id == "ad_1"
    assert await store.history("ad_2") == []
    await store.append(_job("ad_3", owner="bob", key="k1"))  # keys are per owner
    assert (await store.job_by_idempotency_key("bob", "k1")).job_id == "ad_3"  # type: ignore[union-attr]


@pytest.mark.postgres
async def test_a_postgres_store_made_by_an_earlier_version_is_brought_up_to_date() -> None:
    import asyncpg

    from services.runtime.store.postgres import PostgresEventStore, drop_schema

    schema = fresh_namespace("store")
    store = PostgresEventStore(DATABASE_URL, schema=schema)
    await store.open()
    try:
        await store.append(_requested("ad_1"))
        await store.close()
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            # What an earlier version left: everything but the index on recorded_at, which it did not have.
            await conn.execute(f'DROP INDEX "{schema}".events_by_time')
            store = PostgresEventStore(DATABASE_URL, schema=schema)
            await store.open()
            assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".events_by_time')
            with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                await conn.execute(f'DELETE FROM "{schema}".events')
        finally:
            await conn.close()
        assert [r.event.event_id for r in await store.history("ad_1")] == ["ad_1/requested"]
        assert await store.job_ids_active_since(0) == ["ad_1"]
    finally:
        await store.close()
        await drop_schema(DATABASE_URL, schema)


async def _damage_views(store: EventStore, tmp_path: Path, job_id: str, old_view: bytes) -> None:
    """What a lost row and an older version's view look like: one job's row gone, another's view without the
    fields this version added. Written straight into the store's tables, as the store itself never would."""
    if isinstance(store, SqliteEventStore):
        import sqlite3

        with sqlite3.connect(tmp_path / "events.sqlite3") as db:
            db.execute("DELETE FROM jobs WHERE job_id = 'ad_queued'")
            db.execute("UPDATE jobs SET view = ? WHERE job_id = ?", (old_view, job_id))
        return
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL)
    try:
        schema = store._schema  # type: ignore[attr-defined]
        await conn.execute(f"DELETE FROM \"{schema}\".jobs WHERE job_id = 'ad_queued'")
        await conn.execute(f'UPDATE "{schema}".jobs SET view = $1 WHERE job_id = $2', old_view, job_id)
    finally:
        await conn.close()


async def test_views_are_rebuilt_from_the_events(make_store: MakeStore, tmp_path: Path) -> None:
    store = await make_store()
    await store.append(_job("ad_done", key="k-1"))
    await store.append(JobStarted(event_id="ad_done/started", job_id="ad_done"))
    await store.append(
        JobCompleted(
            event_id="ad_done/completed",
            job_id="ad_done",
            final_ref="file:///final.mp4",
            final_video_url="http://v",
            duration_s=1,
            captions_ref="file:///final.vtt",
            captions_url="http://c",
        )
    )
    await store.append(_job("ad_queued", priority="high"))
    await store.append(_job("ad_other", owner="bob"))
    await store.append(JobCancelled(event_id="ad_other/cancelled", job_id="ad_other"))
    before = {job: await store.job(job) for job in ("ad_done", "ad_queued", "ad_other")}
    listed = [v.job_id for v in await store.jobs("ann")]
    done = before["ad_done"]
    assert done is not None and done.final_ref == "file:///final.mp4"
    old = msgspec.json.encode({k: v for k, v in msgspec.to_builtins(done).items() if k not in ("final_ref",)})
    await _damage_views(store, tmp_path, "ad_done", old)
    damaged = await store.job("ad_done")
    assert await store.job("ad_queued") is None and damaged is not None and damaged.final_ref is None

    assert await store.rebuild_views() == (3, 6)
    assert {job: await store.job(job) for job in before} == before
    assert [v.job_id for v in await store.jobs("ann")] == listed == ["ad_queued", "ad_done"]
    assert [v.job_id for v in await store.queued_jobs()] == ["ad_queued"]
    by_key = await store.job_by_idempotency_key("ann", "k-1")
    assert by_key is not None and by_key.job_id == "ad_done"
    # Appends go on as before, on the rebuilt views.
    await store.append(JobStarted(event_id="ad_queued/started", job_id="ad_queued"))
    started = await store.job("ad_queued")
    assert started is not None and started.status == "running"
