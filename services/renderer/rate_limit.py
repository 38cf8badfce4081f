"""A requests-per-minute limit for one provider quota, counted in a moving window, shared by whoever shares its storage.

Vertex AI meters Veo by requests per minute per project (10 for veo-3.x): clips must queue for the quota rather than
each meeting a 429, and a quota of N per minute admits N requests in any minute, a burst of N at once included. So
the requests are counted in a moving window (`limits`' MovingWindowRateLimiter): a request goes when fewer than N
went in the last 60 s, else it waits until the oldest of them leaves the window. The count lives in a `limits` async
storage: in memory for one process (the embedded default), in PostgreSQL (`services/runtime/limits_storage.py`) for
the renderer processes of the distributed mode, which all draw on one project quota.

A 429 means the provider counts differently from us (another client on the project, a quota lowered): `back_off`
holds every caller of the limit back, in every process sharing the storage, for at least the given time."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter

# A waiter looks again at least this often: a slot may free earlier than the window said (another process's
# storage clock, a cleared hold), and never more often, so that many waiters do not hammer a shared storage.
_MIN_WAIT_S = 0.05


class RequestRate(Protocol):
    """Slots for requests to one provider quota."""

    async def acquire(self) -> None:
        """Wait until a request may go, and count it."""
        ...

    async def back_off(self, seconds: float) -> None:
        """The provider said slow down: hold every caller back for at least `seconds`."""
        ...


def window_item(requests: float, per_seconds: int = 60) -> RateLimitItem:
    """`requests` in `per_seconds` as whole numbers for `limits`: floor(requests) in that window, or, for less than
    one, 1 in a window as much longer (never more than the quota allows)."""
    if requests <= 0:
        raise ValueError("the quota must be more than 0 requests")
    if requests >= 1:
        return RateLimitItemPerSecond(math.floor(requests), per_seconds)
    return RateLimitItemPerSecond(1, math.ceil(per_seconds / requests))


class RateLimit:
    """At most `requests` in any `per_seconds` (a minute unless a test shortens it) for the quota `name`."""

    def __init__(
        self,
        requests: float,
        *,
        per_seconds: int = 60,
        name: str = "quota",
        storage: Storage | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.item = window_item(requests, per_seconds)
        self._name = name
        self._storage: Storage = storage if storage is not None else MemoryStorage()
        if not isinstance(self._storage, MovingWindowSupport):
            raise TypeError(f"{type(self._storage).__name__} keeps no moving windows")
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._hold_key = f"adagent/{name}/hold"
        self._sleep = sleep
        # Callers in this process queue in arrival order; only the first asks the storage, the rest wait their turn.
        self._turn = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._turn:
            while True:
                held = await self._held_for()
                if held > 0:
                    await self._sleep(max(held, _MIN_WAIT_S))
                    continue
                if await self._limiter.hit(self.item, self._name):
                    return
                stats = await self._limiter.get_window_stats(self.item, self._name)
                # When the oldest request in the window leaves it; bounded, in case the storage's clock is not ours.
                wait = min(max(stats.reset_time - time.time(), _MIN_WAIT_S), float(self.item.get_expiry()))
                await self._sleep(wait)

    async def back_off(self, seconds: float) -> None:
        if seconds <= 0 or await self._held_for() >= seconds:
            return
        # A counter that expires when the hold ends: `limits` storages keep expiring keys, the memory and PostgreSQL
        # ones alike. Its expiry is set when it is created, so a longer hold replaces a shorter one.
        await self._storage.clear(self._hold_key)
        await self._storage.incr(self._hold_key, math.ceil(seconds))

    async def _held_for(self) -> float:
        """Seconds left of a hold set by `back_off` (here or in another process), 0 when there is none."""
        if await self._storage.get(self._hold_key) <= 0:
            return 0.0
        return max(0.0, await self._storage.get_expiry(self._hold_key) - time.time())
