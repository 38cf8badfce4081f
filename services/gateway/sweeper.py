"""The sweep: a running job that nothing works on any more is failed, so its user's slot frees and the queue moves on.

A running job is in someone's hands while
- it recorded an event less than a lease ago (ADAGENT_WORKER_LEASE_SECONDS): a step just handed it on, or is
  making progress;
- a live worker holds one of its messages: each worker's row in the registry names the jobs it is handling, written
  when it takes a message and renewed every third of the lease while its process lives (services/runtime/workers).
  This covers a step of any length: a Veo clip polled for minutes, a merge waiting out another merger's claim
  (MergeStarted and its ADAGENT_MERGE_LEASE_SECONDS), a render running up to ADAGENT_CLIP_DEADLINE_SECONDS;
- or it may be waiting its turn in the queue of its step: every live worker of that queue has all its slots busy
  (a worker with a free slot takes a waiting message at once, so it would hold it).
Otherwise nothing will move it on: the worker holding it died with no other to take its message back, its message
was dead-lettered, or the embedded server stopped and its in-process queues went with it. The job is failed at the
second sweep in a row that finds it so (a sweep every half lease), which leaves a message just being handed to a
worker time to show up as held.

One gateway sweeps at a time: the one holding the registry's `sweeper` lease, renewed at every sweep and given back
when the gateway stops. Failing a job is a JobFailed like any other, so the scheduler admits the next queued job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Iterable

import structlog

from contracts.job_view import JobView
from services.runtime.context import Runtime
from services.runtime.workers.port import WorkerPresence

log = structlog.get_logger(__name__)

LEASE = "sweeper"
# The queues a running job's next message can wait in, by the step its view shows: the step's own queue and, once
# the step has handed on (an event the next step consumes), the next one's, until the next step records its start.
_ALL_QUEUES = ("prompter", "renderer", "merger", "voice")
QUEUES_BY_STEP: dict[int, tuple[str, ...]] = {
    0: ("prompter",),  # JobStarted, not yet taken
    1: ("prompter",),  # the prompter sends the clips' commands only after ClipRenderingStarted (step 2)
    2: ("renderer", "merger"),
    3: ("merger", "voice"),
    4: ("voice",),
    5: ("voice",),
}


def unattended(
    running: Iterable[JobView], workers: Iterable[WorkerPresence], now: float, lease: float
) -> list[tuple[JobView, float]]:
    """The running jobs that nothing holds or waits on, with how long (s) since each recorded anything."""
    workers = list(workers)
    held = {job_id for w in workers for job_id in w.jobs}
    by_queue: dict[str, list[WorkerPresence]] = {}
    for w in workers:
        by_queue.setdefault(w.queue, []).append(w)

    def may_wait_in(queue: str) -> bool:
        live = by_queue.get(queue, [])
        return bool(live) and all(w.busy >= w.capacity for w in live)

    found = []
    for job in running:
        idle = now - job.updated_at
        if idle < lease or job.job_id in held:
            continue
        if any(may_wait_in(q) for q in QUEUES_BY_STEP.get(job.step, _ALL_QUEUES)):
            continue
        found.append((job, idle))
    return found


def abandoned_reason(idle_seconds: float) -> str:
    return (
        f"The server stopped working on this job: nothing had worked on it for {idle_seconds:.0f} s (the process "
        "working on it may have stopped); try again"
    )


class Sweeper:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._suspects: set[str] = set()  # found unattended by the previous sweep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_forever(), name="scheduler:sweep")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # it expires by itself after the lease
            await self._rt.registry.release(LEASE, self._holder)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._rt.settings.worker_lease_seconds / 2)
            try:
                await self.sweep()
            except Exception as exc:  # the store away for a moment: the next sweep tries again
                log.warning("scheduler.sweep_failed", error=repr(exc))

    async def sweep(self) -> list[str]:
        """One sweep; the ids of the jobs it failed."""
        rt = self._rt
        lease = rt.settings.worker_lease_seconds
        if not await rt.registry.claim(LEASE, self._holder, lease):
            self._suspects.clear()  # another gateway sweeps; if this one takes over, it starts afresh
            return []
        now = await rt.registry.now()
        found = unattended(await rt.store.running_jobs(), await rt.registry.live(lease), now, lease)
        failed: list[str] = []
        for job, idle in found:
            if job.job_id not in self._suspects:
                continue
            log.error("scheduler.job_abandoned", job_id=job.job_id, step=job.step, idle_s=round(idle, 1))
            await rt.fail(job.job_id, job.step, abandoned_reason(idle))
            failed.append(job.job_id)
        self._suspects = {job.job_id for job, _ in found} - set(failed)
        return failed
