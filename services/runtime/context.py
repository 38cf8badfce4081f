"""The runtime a service runs in: settings, event store, bus, object storage and the recorder, opened together."""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from tenacity import AsyncRetrying, RetryCallState, wait_exponential

from contracts.events import JobFailed, event_id
from services.runtime.bus.memory import InMemoryBroker, InMemoryBus
from services.runtime.bus.port import Bus, job_of
from services.runtime.failures import public_reason
from services.runtime.job_history import JobHistory
from services.runtime.recorder import Recorder
from services.runtime.settings import Settings
from services.runtime.storage.local import LocalStorage
from services.runtime.storage.port import ObjectStorage
from services.runtime.storage.signing import UrlSigner, load_or_create_key
from services.runtime.store.port import EventStore
from services.runtime.store.sqlite import SqliteEventStore
from services.runtime.workers.port import WorkerRegistry
from services.runtime.workers.presence import Presence
from services.runtime.workers.tracked_bus import TrackedBus

log = structlog.get_logger(__name__)

# Recording a job's failure is retried until it is in the store: 50 ms, doubling, then every 30 s. A failure not
# recorded leaves the job running for ever, holding its user's slot; the store that refused it (a full disk, a
# database restarting) usually takes it once space is freed or the database is back.
_FAIL_RETRY_FIRST_SECONDS = 0.05
_FAIL_RETRY_MAX_SECONDS = 30.0


@dataclass
class Runtime:
    settings: Settings
    store: EventStore
    bus: Bus
    storage: ObjectStorage
    recorder: Recorder
    registry: WorkerRegistry  # which workers are alive, holding which jobs (read by the scheduler's sweep)
    presence: Presence  # this process's workers in it
    # queue -> (step, what the step does), registered by each service, to name them when a message is given up on
    steps: dict[str, tuple[int, str]] = field(default_factory=dict)
    # What providers opened (HTTP clients, sessions), closed after the bus stops delivering to them
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def give_up(self, queue: str, message: Any, error: BaseException, attempts: int) -> None:
        """The bus gave up on a message: end its job with an `error` naming the step and the reason."""
        job_id = job_of(message)
        if not job_id:
            return
        try:
            wanted = await self.still_wanted(job_id)
        except Exception as exc:  # the store cannot be read just now: fail() below retries until it can tell
            log.warning("job.give_up_cannot_read", job_id=job_id, error=repr(exc))
            wanted = True
        if not wanted:
            return  # a late dead letter of a job that has ended: nothing to fail
        step, what = self.steps.get(queue, (0, queue))
        reason = public_reason(error, "job.given_up", job_id=job_id, step=step, queue=queue, attempts=attempts)
        await self.fail(job_id, step, f"{what} failed after {attempts} attempts: {reason}")

    async def history(self, job_id: str) -> JobHistory:
        return JobHistory(await self.store.history(job_id))

    async def still_wanted(self, job_id: str) -> bool:
        """False once the job is finished (cancelled, failed elsewhere): the safe point to abandon work in flight."""
        view = await self.store.job(job_id)
        return view is not None and not view.finished

    def work_dir(self, service: str, job_id: str) -> Path:
        path = self.settings.work_dir / service / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def clean_work_dir(self, service: str, job_id: str) -> None:
        shutil.rmtree(self.settings.work_dir / service / job_id, ignore_errors=True)

    async def fail(self, job_id: str, step: int, message: str) -> None:
        """End the job with an `error` event. One failure per job: a second is a no-op.

        Retried, with backoff, until the store takes it (or the job ends otherwise meanwhile): the caller holds its
        message unacknowledged all along, so a process stopped meanwhile leaves the message, and the failure, to
        another. Giving up here would leave the job running for ever."""
        log.warning("job.failed", job_id=job_id, step=step, message=message)
        failed = JobFailed(event_id=event_id(job_id, "failed"), job_id=job_id, step=step, message=message)

        def not_recorded(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.error(
                "job.failure_not_recorded", job_id=job_id, attempt=state.attempt_number, retry_in_s=wait,
                error=repr(error),
            )  # fmt: skip

        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=_FAIL_RETRY_FIRST_SECONDS, max=_FAIL_RETRY_MAX_SECONDS),
            before_sleep=not_recorded,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1 and await self._ended_otherwise(job_id):
                    return
                await self.recorder.record(failed)

    async def _ended_otherwise(self, job_id: str) -> bool:
        """The job completed or was cancelled (or is unknown): no failure to record. A job already failed still
        gets its JobFailed recorded again: a no-op in the store that publishes it, in case the publish was lost."""
        view = await self.store.job(job_id)
        return view is None or (view.finished and view.status != "failed")

    async def fail_with(
        self, job_id: str, step: int, failed_to: str, error: BaseException, *, log_event: str, **context: object
    ) -> None:
        """End the job because of `error`: `failed_to` names what the step could not do ("Failed to merge video
        clips"), followed by the reason a client may read (see services/runtime/failures.py)."""
        reason = public_reason(error, log_event, job_id=job_id, step=step, **context)
        await self.fail(job_id, step, f"{failed_to}: {reason}")

    async def close(self) -> None:
        try:
            await self.bus.close()
            await self.presence.close()
            for close in reversed(self.closers):
                try:
                    await close()
                except Exception:
                    log.warning("runtime.closer_failed", exc_info=True)
        finally:
            try:
                await self.registry.close()
            finally:
                await self.store.close()


def make_bus(settings: Settings, broker: InMemoryBroker | None = None) -> Bus:
    if settings.bus == "rabbitmq":
        from services.runtime.bus.rabbitmq import RabbitMqBus

        return RabbitMqBus(
            settings.amqp_url, namespace=settings.amqp_namespace, close_grace=settings.shutdown_grace_seconds
        )
    return InMemoryBus(broker)


def make_store(settings: Settings) -> EventStore:
    if settings.store == "postgres":
        from services.runtime.store.postgres import PostgresEventStore

        return PostgresEventStore(settings.database_url, schema=settings.database_schema)
    return SqliteEventStore(settings.sqlite_path)


def make_registry(settings: Settings) -> WorkerRegistry:
    if settings.store == "postgres":
        from services.runtime.workers.postgres import PostgresWorkerRegistry

        return PostgresWorkerRegistry(settings.database_url, schema=settings.database_schema)
    from services.runtime.workers.sqlite import SqliteWorkerRegistry

    return SqliteWorkerRegistry(settings.sqlite_path)


def make_storage(settings: Settings) -> ObjectStorage:
    if settings.storage == "gcs":
        from services.runtime.storage.gcs import GcsConfig, GcsStorage

        # Credentials are checked here, at start: a missing bucket or key stops the process with its variable named.
        return GcsStorage(GcsConfig.from_env(os.environ))
    signer = UrlSigner(load_or_create_key(settings.home / "signing.key"))
    return LocalStorage(settings.objects_dir, signer, settings.public_url)


async def open_runtime(
    settings: Settings, *, broker: InMemoryBroker | None = None, store: EventStore | None = None
) -> Runtime:
    """`store`: an event store to use instead of the one the settings name (tests pass one that fails on cue)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    storage = make_storage(settings)
    store = store or make_store(settings)
    await store.open()
    registry = make_registry(settings)
    steps: dict[str, tuple[int, str]] = {}
    presence = Presence(registry, settings.worker_lease_seconds)
    bus = TrackedBus(make_bus(settings, broker), presence, steps)
    try:
        await registry.open()
        await bus.start()
    except BaseException:
        await registry.close()
        await store.close()
        raise
    rt = Runtime(settings, store, bus, storage, Recorder(store, bus), registry, presence, steps)
    bus.set_give_up(rt.give_up)
    return rt
