"""Admission: which queued jobs start now. Priority first (high, normal, low), then first come, first served, within
a global limit of running jobs and a per-user limit.

It reacts to every lifecycle event (a job queued, a job finished) and re-reads the job view, so its state is the
store's. One admission runs at a time: the queue is consumed by a single active consumer across all gateways.
Beside it, the sweep (services/gateway/sweeper.py) fails running jobs that nothing works on any more, whose slots
would otherwise stay taken for ever.
"""

from __future__ import annotations

from collections import Counter

import structlog

from contracts.events import JobStarted, RecordedEvent, event_id
from services.gateway.sweeper import Sweeper
from services.runtime.context import Runtime

log = structlog.get_logger(__name__)

QUEUE = "scheduler"
LIFECYCLE_EVENTS = ["JobRequested", "JobCompleted", "JobFailed", "JobCancelled"]


async def admit(rt: Runtime) -> list[str]:
    """Start as many queued jobs as the limits allow; return the ids started."""
    running = await rt.store.running_jobs()
    total = len(running)
    per_user = Counter(job.owner for job in running)
    started: list[str] = []
    for job in await rt.store.queued_jobs():
        if total >= rt.settings.max_running_jobs:
            break
        if per_user[job.owner] >= rt.settings.max_running_per_user:
            continue  # this user is at their limit; someone else's job may go first
        recorded = await rt.recorder.record(JobStarted(event_id=event_id(job.job_id, "started"), job_id=job.job_id))
        if recorded.fresh:
            total += 1
            per_user[job.owner] += 1
            started.append(job.job_id)
    if started:
        log.info("scheduler.started", jobs=started, running=total)
    return started


async def on_lifecycle_event(_: RecordedEvent, *, rt: Runtime) -> None:
    await admit(rt)


async def start(rt: Runtime) -> None:
    from functools import partial

    await rt.bus.consume_events(
        QUEUE, LIFECYCLE_EVENTS, partial(on_lifecycle_event, rt=rt), concurrency=1, single_active=True
    )
    sweeper = Sweeper(rt)
    sweeper.start()
    rt.closers.append(sweeper.close)
    await admit(rt)  # jobs queued while no scheduler was running


async def queue_position(rt: Runtime, job_id: str) -> int | None:
    """1 for the next job to start; None when the job is not waiting."""
    for position, job in enumerate(await rt.store.queued_jobs(), start=1):
        if job.job_id == job_id:
            return position
    return None
