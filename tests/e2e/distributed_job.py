"""One job on the distributed mode as real processes: the services started on a fresh namespace and schema, a user
logged in, the job created over HTTP; everything stopped and deleted afterwards, whatever the test did."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.runtime.store.postgres import PostgresEventStore
from tests.brokers import DATABASE_URL, fresh_namespace
from tests.e2e.processes import distributed_env, free_port, healthy, login, start_services, stop_and_clean_up
from tests.gateway.jobs_client import client_for


@dataclass
class DistributedJob:
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[str]]
    store: PostgresEventStore  # the services' event store, read directly
    client: httpx.AsyncClient  # logged in to the gateway
    job_id: str


@asynccontextmanager
async def distributed_job(
    tmp_path: Path, prefix: str, body: dict[str, object], **env: str
) -> AsyncIterator[DistributedJob]:
    namespace = fresh_namespace(prefix)
    port = free_port()
    environment = distributed_env(tmp_path, namespace, port, **env)
    processes = await asyncio.to_thread(start_services, environment, [port])
    store = PostgresEventStore(DATABASE_URL, schema=namespace)
    try:
        url = f"http://127.0.0.1:{port}"
        await healthy(url, processes)
        await store.open()
        async with client_for(url, await login(url)) as client:
            job_id = (await client.post("/api/ad-agent/create", json=body)).json()["job_id"]
            yield DistributedJob(environment, processes, store, client, job_id)
    finally:
        await store.close()
        await stop_and_clean_up(processes, namespace)
