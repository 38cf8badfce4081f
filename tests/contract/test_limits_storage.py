"""The `limits` storage the project chooses from settings: memory when embedded, PostgreSQL when processes share the
store, where every client, in any process, counts in the same window."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

from services.runtime.limits_storage import PostgresLimitsStorage, close_limits_storage, limits_storage
from services.runtime.settings import load_settings
from services.runtime.store.postgres import drop_schema
from tests.brokers import DATABASE_URL, fresh_namespace

ROOT = Path(__file__).resolve().parents[2]
Strategy = Callable[[Storage], RateLimiter]
STRATEGIES: dict[str, Strategy] = {
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
}


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = fresh_namespace("limits")
    yield name
    await drop_schema(DATABASE_URL, name)


@pytest.fixture
async def clients(schema: str) -> AsyncIterator[list[PostgresLimitsStorage]]:
    """Two clients of one database, each with its own connection pool, as two processes would be."""
    made = [PostgresLimitsStorage(DATABASE_URL, schema) for _ in range(2)]
    yield made
    for storage in made:
        await storage.close()


def test_the_settings_choose_the_storage() -> None:
    assert isinstance(limits_storage(load_settings({"ADAGENT_HOME": "/tmp/x"})), MemoryStorage)
    shared = limits_storage(
        load_settings({"ADAGENT_HOME": "/tmp/x", "ADAGENT_STORE": "postgres", "ADAGENT_DATABASE_SCHEMA": "tenant_a"})
    )
    assert isinstance(shared, PostgresLimitsStorage)
    assert shared._entries == '"tenant_a".limits_entries'


@pytest.mark.postgres
@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_two_clients_share_one_window_and_never_admit_more_than_the_limit(
    clients: list[PostgresLimitsStorage], strategy: str
) -> None:
    one, other = (STRATEGIES[strategy](storage) for storage in clients)
    item = RateLimitItemPerMinute(10)
    # 30 hits at once, half from each client: exactly 10 get through, whichever client they came from.
    outcomes = await asyncio.gather(*(limiter.hit(item, "alice") for limiter in (one, other) for _ in range(15)))
    assert sum(outcomes) == 10
    assert not await one.hit(item, "alice") and not await other.hit(item, "alice")
    assert await one.hit(item, "bob"), "another identifier has its own window"
    stats = await other.get_window_stats(item, "alice")
    assert stats.remaining == 0 and time.time() < stats.reset_time <= time.time() + 60 + 1
    await one.clear(item, "alice")
    assert await other.hit(item, "alice")


@pytest.mark.postgres
async def test_the_moving_window_frees_a_place_when_its_oldest_hit_leaves_it(
    clients: list[PostgresLimitsStorage],
) -> None:
    one, other = (MovingWindowRateLimiter(storage) for storage in clients)
    item = RateLimitItemPerSecond(2, 1)
    assert await one.hit(item, "k")
    await asyncio.sleep(0.5)
    assert await other.hit(item, "k")
    assert not await one.hit(item, "k")
    start, used = await clients[1].get_moving_window(item.key_for("k"), 2, 1)
    assert used == 2 and time.time() - 0.7 < start < time.time() - 0.3, "the window starts at its oldest hit"
    await asyncio.sleep(0.6)  # the first hit has left the window, the second has not
    assert await other.hit(item, "k")
    assert not await one.hit(item, "k")


@pytest.mark.postgres
async def test_another_process_counts_in_the_same_window(clients: list[PostgresLimitsStorage], schema: str) -> None:
    item = RateLimitItemPerMinute(5)
    limiter = MovingWindowRateLimiter(clients[0])
    assert all([await limiter.hit(item, "shared") for _ in range(3)])
    script = textwrap.dedent(
        f"""
        import asyncio
        from limits import RateLimitItemPerMinute
        from limits.aio.strategies import MovingWindowRateLimiter
        from services.runtime.limits_storage import close_limits_storage, limits_storage
        from services.runtime.settings import load_settings

        async def main():
            settings = load_settings({{"ADAGENT_HOME": "/tmp/unused", "ADAGENT_STORE": "postgres",
                                      "ADAGENT_DATABASE_URL": {DATABASE_URL!r}, "ADAGENT_DATABASE_SCHEMA": {schema!r}}})
            storage = limits_storage(settings)
            limiter = MovingWindowRateLimiter(storage)
            print([await limiter.hit(RateLimitItemPerMinute(5), "shared") for _ in range(3)])
            await close_limits_storage(storage)

        asyncio.run(main())
        """
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True, True, False]"
    assert not await limiter.hit(item, "shared")


@pytest.mark.postgres
async def test_fixed_window_counters_expire_and_the_storage_resets(clients: list[PostgresLimitsStorage]) -> None:
    one, other = clients
    assert await one.incr("c", 1) == 1 and await other.incr("c", 1, amount=2) == 3
    assert await other.get("c") == 3 and time.time() < await one.get_expiry("c") <= time.time() + 1.1
    assert await one.decr("c") == 2
    await asyncio.sleep(1.1)
    assert await other.get("c") == 0 and await one.incr("c", 1) == 1, "an expired counter starts again"
    assert await one.check()
    assert await other.reset() == 1 and await one.get("c") == 0


async def test_memory_storage_needs_no_closing() -> None:
    storage = limits_storage(load_settings({"ADAGENT_HOME": "/tmp/x"}))
    assert await MovingWindowRateLimiter(storage).hit(RateLimitItemPerMinute(1), "x")
    await close_limits_storage(storage)
