"""One contract, two registries (SQLite beside the embedded store, PostgreSQL beside the shared one): worker rows are
live until a lease after their last renewal, and a named lease has one holder at a time across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from services.runtime.workers.port import WorkerPresence, WorkerRegistry
from services.runtime.workers.sqlite import SqliteWorkerRegistry
from tests.brokers import DATABASE_URL, fresh_namespace

MakeRegistry = Callable[[], Awaitable[WorkerRegistry]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def make_registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeRegistry]:
    schema = fresh_namespace("workers")
    opened: list[WorkerRegistry] = []

    async def make() -> WorkerRegistry:
        registry: WorkerRegistry
        if request.param == "sqlite":
            registry = SqliteWorkerRegistry(tmp_path / "events.sqlite3")
        else:
            from services.runtime.workers.postgres import PostgresWorkerRegistry

            registry = PostgresWorkerRegistry(DATABASE_URL, schema=schema)
        await registry.open()
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        await registry.close()
    if request.param == "postgres":
        from services.runtime.store.postgres import drop_schema

        await drop_schema(DATABASE_URL, schema)


def _row(worker_id: str, jobs: list[str], busy: int = 1) -> WorkerPresence:
    return WorkerPresence(worker_id=worker_id, queue="renderer", capacity=2, busy=busy, jobs=jobs)


async def test_a_worker_is_live_until_a_lease_after_its_last_renewal(make_registry: MakeRegistry) -> None:
    one, other = await make_registry(), await make_registry()  # two processes
    await one.renew([_row("a:renderer", ["ad_1"])])
    await other.renew([_row("b:renderer", ["ad_2", "ad_3"], busy=2)])
    before = await one.now()
    live = {w.worker_id: w for w in await other.live(0.5)}
    assert set(live) == {"a:renderer", "b:renderer"}
    assert live["b:renderer"].jobs == ["ad_2", "ad_3"] and live["b:renderer"].busy == 2
    assert live["a:renderer"].renewed_at <= before

    await asyncio.sleep(0.6)
    await other.renew([_row("b:renderer", ["ad_3"])])  # b renews (its hold changed); a has gone quiet
    assert [w.worker_id for w in await one.live(0.5)] == ["b:renderer"]
    assert (await one.live(0.5))[0].jobs == ["ad_3"]
    await other.forget(["b:renderer"])
    assert [w.worker_id for w in await one.live(60)] == ["a:renderer"]


async def test_a_lease_has_one_holder_until_it_expires_or_is_given_back(make_registry: MakeRegistry) -> None:
    one, other = await make_registry(), await make_registry()
    results = await asyncio.gather(one.claim("sweeper", "gw-1", 0.5), other.claim("sweeper", "gw-2", 0.5))
    assert sorted(results) == [False, True]  # claimed at once by both: exactly one has it
    holder, waiter = ("gw-1", "gw-2") if results[0] else ("gw-2", "gw-1")
    assert await one.claim("sweeper", holder, 0.5)  # the holder renews
    assert not await other.claim("sweeper", waiter, 0.5)
    await asyncio.sleep(0.6)  # the holder stopped renewing
    assert await other.claim("sweeper", waiter, 30)
    assert not await one.claim("sweeper", holder, 30)
    await one.release("sweeper", holder)  # not its lease any more: nothing happens
    assert not await one.claim("sweeper", holder, 30)
    await other.release("sweeper", waiter)
    assert await one.claim("sweeper", holder, 30)
