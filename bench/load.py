"""Load run of the distributed mode: 30 concurrent jobs (short scripts, local renderer) with 1 and with 3 renderer
processes, on the local RabbitMQ and PostgreSQL. Every job must complete and every SSE client must receive every
event of its job; prints the wall time of each run and their ratio, measured in this one run.

    .venv/bin/python bench/load.py [--jobs 30] [--renderers 1 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.sse import project  # noqa: E402
from services.cli.sse_client import iter_sse  # noqa: E402
from services.runtime.bus.rabbitmq import delete_namespace  # noqa: E402
from services.runtime.store.postgres import PostgresEventStore, drop_schema  # noqa: E402

AMQP_URL = os.environ.get("ADAGENT_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DATABASE_URL = os.environ.get("ADAGENT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCRIPTS = ["Wake up radiant.", "Order today and save.", "Meet Glow tonight.", "Your skin will thank you."]
AVATAR = "data:image/jpeg;base64," + base64.b64encode((ROOT / "examples" / "avatar.jpg").read_bytes()).decode()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def _follow(client: httpx.AsyncClient, index: int) -> tuple[str, str, list[int]]:
    """Create one job over create-stream and read its whole stream: its id, the last event, the SSE ids seen."""
    body = {"script": SCRIPTS[index % len(SCRIPTS)], "character_image": AVATAR}
    ids: list[int] = []
    last = job_id = ""
    async with client.stream("POST", "/api/ad-agent/create-stream", json=body) as response:
        response.raise_for_status()
        async for message in iter_sse(response):
            if message.data:
                ids.append(int(message.id or 0))
                last = message.event
                job_id = message.json()["job_id"]
    return job_id, last, ids


async def run(jobs: int, renderers: int) -> float:
    namespace = f"bench_{uuid.uuid4().hex[:10]}"
    port = _port()
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "ADAGENT_HOME": home,
            "ADAGENT_BUS": "rabbitmq",
            "ADAGENT_AMQP_URL": AMQP_URL,
            "ADAGENT_AMQP_NAMESPACE": namespace,
            "ADAGENT_STORE": "postgres",
            "ADAGENT_DATABASE_URL": DATABASE_URL,
            "ADAGENT_DATABASE_SCHEMA": namespace,
            "ADAGENT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "ADAGENT_SIGNING_KEY": "bench",
            "ADAGENT_JWT_SECRET": "bench",
            "ADAGENT_MAX_RUNNING_JOBS": str(jobs),
            "ADAGENT_MAX_RUNNING_PER_USER": str(jobs),
            "ADAGENT_MAX_QUEUED_PER_USER": str(jobs),
        }
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli.main", "users", "add", "bench", "--password-stdin"],
            input=b"bench-password\n", env=env, check=True, capture_output=True,
        )  # fmt: skip
        processes = [_spawn(env, "service", "gateway", "--port", str(port))]
        processes += [_spawn(env, "service", name) for name in ("prompter", "merger", "voice")]
        processes += [_spawn(env, "service", "renderer") for _ in range(renderers)]
        try:
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=600)) as client:
                for _ in range(300):
                    try:
                        if (await client.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
                login = await client.post("/api/auth/login", json={"username": "bench", "password": "bench-password"})
                client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
                started = time.monotonic()
                results = await asyncio.gather(*(_follow(client, i) for i in range(jobs)))
                wall = time.monotonic() - started
            store = PostgresEventStore(DATABASE_URL, schema=namespace)
            await store.open()
            try:
                for job_id, last, ids in results:
                    assert last == "complete", (job_id, last)
                    expected = [e.id for e in project(await store.history(job_id))]
                    assert ids == expected, (job_id, ids, expected)  # every event, once, in order
            finally:
                await store.close()
            return wall
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(60)
            await delete_namespace(AMQP_URL, namespace)
            await drop_schema(DATABASE_URL, namespace)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--renderers", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    walls = {}
    for renderers in args.renderers:
        walls[renderers] = await run(args.jobs, renderers)
        print(f"{args.jobs} jobs, {renderers} renderer process(es): all complete, every event seen; "
              f"wall {walls[renderers]:.1f} s")  # fmt: skip
    if len(walls) == 2:
        a, b = args.renderers
        print(f"ratio wall({a}) / wall({b}) = {walls[a] / walls[b]:.2f}  (on {os.cpu_count()} cores)")


if __name__ == "__main__":
    asyncio.run(main())
