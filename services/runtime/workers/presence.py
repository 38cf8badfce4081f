"""This process's workers in the registry: one row per step queue it consumes, saying how many messages it handles at
once, how many it is handling and for which jobs. A row is written when a handler takes a message (so a job's new
holder is known at once) and every third of the lease (so a live worker stays live); a process that dies stops
renewing, and after the lease its row, and its hold on its jobs, count for nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from services.runtime.bus.port import job_of
from services.runtime.workers.port import WorkerPresence, WorkerRegistry

log = structlog.get_logger(__name__)

M = TypeVar("M")


@dataclass
class _Worker:
    worker_id: str
    queue: str
    capacity: int
    held: Counter[str] = field(default_factory=Counter)  # job id -> messages of it being handled
    busy: int = 0

    def row(self) -> WorkerPresence:
        return WorkerPresence(
            worker_id=self.worker_id, queue=self.queue, capacity=self.capacity, busy=self.busy, jobs=sorted(self.held)
        )


class Presence:
    def __init__(self, registry: WorkerRegistry, lease_seconds: float) -> None:
        self._registry = registry
        self.lease_seconds = lease_seconds
        self._process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._workers: dict[str, _Worker] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._failing = False

    async def track(
        self, queue: str, handler: Callable[[M], Awaitable[None]], capacity: int
    ) -> Callable[[M], Awaitable[None]]:
        """`handler`, holding the job of each message it handles in the registry; the worker is registered now."""
        worker = self._workers.get(queue)
        if worker is None:
            worker = self._workers[queue] = _Worker(f"{self._process}:{queue}", queue, 0)
        worker.capacity += max(1, capacity)
        await self._tell([worker])
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._renew_forever(), name="workers:heartbeat")

        async def holding(message: M) -> None:
            job_id = job_of(message) or ""
            worker.held[job_id] += 1
            worker.busy += 1
            await self._tell([worker])
            try:
                await handler(message)
            finally:
                worker.busy -= 1
                worker.held[job_id] -= 1
                if worker.held[job_id] <= 0:
                    del worker.held[job_id]

        return holding

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self._tell(list(self._workers.values()))

    async def _tell(self, workers: list[_Worker]) -> None:
        # A registry that cannot be written (a full disk, a database away) must not stop the work itself: the rows
        # go stale, and the sweep may then fail the job, which the worker's own outcome would have done anyway.
        try:
            await self._registry.renew([w.row() for w in workers])
        except Exception as exc:
            if not self._failing:
                log.warning("workers.renew_failed", error=repr(exc))
            self._failing = True
        else:
            if self._failing:
                log.info("workers.renewing_again")
            self._failing = False

    async def close(self) -> None:
        """Stop renewing and take this process's rows out, so no sweep counts its workers as still there."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._workers:
            try:
                await self._registry.forget([w.worker_id for w in self._workers.values()])
            except Exception as exc:  # they expire by themselves after the lease
                log.warning("workers.forget_failed", error=repr(exc))
            self._workers.clear()
