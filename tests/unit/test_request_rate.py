"""The provider quota limit (services/renderer/rate_limit.py): N requests in any window, a 429 holding every caller.

Real time, on a one-second window: the moving window is `limits`' own, which reads the wall clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.renderer.rate_limit import RateLimit, window_item


async def _acquire_all(limit: RateLimit, n: int) -> list[float]:
    """Start `n` acquires at once; when each was let through, in seconds from the start."""
    t0 = time.monotonic()

    async def one() -> float:
        await limit.acquire()
        return time.monotonic() - t0

    return sorted(await asyncio.gather(*(one() for _ in range(n))))


async def test_a_quota_of_n_admits_n_at_once_then_the_next_when_the_window_moves() -> None:
    limit = RateLimit(3, per_seconds=1)
    *_, third, fourth = await _acquire_all(limit, 4)
    assert third < 0.2  # three at once: a quota of 3 a second is not one every third of a second
    assert 0.95 <= fourth < 1.5  # the fourth waits until the first leaves the window
    # The window moves on: one second after the first three, three more may go, not before.
    await asyncio.sleep(max(0.0, 1.05 - fourth))
    again = await _acquire_all(limit, 3)
    assert again[1] < 0.2  # two slots freed (the fourth still holds one)
    assert again[2] >= 0.5


async def test_a_429_holds_every_caller_back() -> None:
    limit = RateLimit(100, per_seconds=60)
    await limit.back_off(1.0)
    waits = await _acquire_all(limit, 3)
    assert waits[0] >= 0.95  # none goes while the hold lasts
    assert waits[-1] < 1.6  # then all, the quota having room
    await limit.back_off(0.0)  # no hold: nothing changes
    assert (await _acquire_all(limit, 1))[0] < 0.1


def test_the_quota_is_whole_requests_in_whole_seconds() -> None:
    assert (window_item(10).amount, window_item(10).get_expiry()) == (10, 60)
    assert (window_item(7.5).amount, window_item(7.5).get_expiry()) == (7, 60)  # never more than asked
    assert (window_item(0.5).amount, window_item(0.5).get_expiry()) == (1, 120)
    with pytest.raises(ValueError, match="more than 0"):
        window_item(0)
