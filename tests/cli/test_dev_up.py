"""`adagent dev up`: the whole topology as local processes with prefixed output; Ctrl-C stops every one of them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.store.postgres import drop_schema
from tests.brokers import AMQP_URL, DATABASE_URL, fresh_namespace

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.timeout(90)]

NAMES = ("gateway", "prompter", "renderer.1", "renderer.2", "merger", "voice")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dev_up(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[str]:
    """`adagent dev up`, stdout and stderr into `log` (a file, so no pipe fills up while the test waits)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "dev", "up", "--renderers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _children_of(pid: int) -> list[int]:
    """Every live process whose parent is `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces or parentheses, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_dev_up_runs_every_service_and_stops_them_all_on_ctrl_c(tmp_path: Path) -> None:
    namespace = fresh_namespace("devup")
    port = _free_port()
    env = {
        **os.environ,
        "ADAGENT_HOME": str(tmp_path / "home"),
        "ADAGENT_AMQP_URL": AMQP_URL,
        "ADAGENT_AMQP_NAMESPACE": namespace,
        "ADAGENT_DATABASE_URL": DATABASE_URL,
        "ADAGENT_DATABASE_SCHEMA": namespace,
        "NO_COLOR": "1",
    }
    for var in ("ADAGENT_BUS", "ADAGENT_STORE", "ADAGENT_PUBLIC_URL", "ADAGENT_SIGNING_KEY", "ADAGENT_JWT_SECRET"):
        env.pop(var, None)  # the command's development defaults, not the test run's
    log = tmp_path / "dev-up.log"
    process = _dev_up(env, port, log)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 45
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            while True:
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.2)
        # Every worker says when it consumes; wait for all of them, not just the gateway.
        while log.read_text().count(" consuming from ") < 5:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        children = _children_of(process.pid)
        assert len(children) == len(NAMES), children
        process.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        await delete_namespace(AMQP_URL, namespace)
        await drop_schema(DATABASE_URL, namespace)
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "\x1b[" not in output  # NO_COLOR, and not a terminal
    for name in NAMES:
        assert re.search(rf"^{re.escape(name)}\s* \| ", output, re.M), (name, output[-3000:])
        assert re.search(rf"^{re.escape(name)}\s* \| adagent \S+ stopped$", output, re.M), (name, output[-3000:])
    assert "stopped 6 of 6 processes" in output and "6 cleanly, 0 killed" in output, output[-1000:]
    assert "Traceback" not in output, output[-3000:]
    assert not [pid for pid in children if _alive(pid)]


async def test_dev_up_stops_everything_when_a_child_dies(tmp_path: Path) -> None:
    """A child that cannot start (here: a bad setting every service refuses) is named, the rest are stopped."""
    env = {
        **os.environ,
        "ADAGENT_HOME": str(tmp_path / "home"),
        "ADAGENT_AMQP_NAMESPACE": fresh_namespace("devup"),
        "ADAGENT_DATABASE_URL": DATABASE_URL,
        "ADAGENT_RENDER_CONCURRENCY": "0",  # refused at start by every child, before touching the broker
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "dev", "up", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "exited unexpectedly (code 2)" in result.stderr, result.stderr[-2000:]
    assert "ADAGENT_RENDER_CONCURRENCY must be at least 1" in result.stdout, result.stdout[-2000:]
