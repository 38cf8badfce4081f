"""A requests-per-minute limit shared by every clip this process renders at once.

Vertex AI meters Veo by requests per minute per project (10 for veo-3.x): concurrent clips must queue for a slot
rather than each meeting a 429. Slots are spaced evenly (60 / rpm seconds apart) instead of allowing bursts, because
the provider's quota is a sliding window and a burst of ten at once is what trips it. This one is for a single
process (the embedded default); renderer processes of the distributed mode share theirs through PostgreSQL
(`shared_rate_limit`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class RequestRate(Protocol):
    """Slots for requests to one provider quota, spaced evenly, in arrival order."""

    async def acquire(self) -> None:
        """Wait for the next free slot."""
        ...

    async def back_off(self, seconds: float) -> None:
        """The provider said slow down: hold every caller back for at least `seconds`."""
        ...


class RateLimit:
    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be more than 0")
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for the next free slot. Slots are handed out in arrival order."""
        async with self._lock:
            now = self._clock()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await self._sleep(wait)

    async def back_off(self, seconds: float) -> None:
        self._next = max(self._next, self._clock() + seconds)
