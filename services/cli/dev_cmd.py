"""`adagent dev up`: the whole distributed topology as local processes, one `adagent service NAME` each, against the
local RabbitMQ and PostgreSQL, with their output interleaved line by line under a coloured name prefix.

Ctrl-C (or SIGTERM) stops every child with SIGTERM, waits for them (then SIGKILL) and exits 0; a child that dies on
its own stops the rest and exits 1."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from services.cli.server import public_url
from services.cli.signals import stop_on_signals
from services.stack import WORKERS

# ANSI foreground colours, one per child in turn: cyan, yellow, green, magenta, blue, red and their bright forms.
_COLOURS = (36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91)
_RESET = "\x1b[0m"
# Beyond the services' own grace period, how long a stopping child may take before it is killed.
_KILL_MARGIN = 10.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dev", help="development helpers: run the distributed topology locally")
    dev_sub = p.add_subparsers(dest="dev_command", required=True)
    up = dev_sub.add_parser(
        "up", help="start gateway, prompter, renderers, merger and voice as local processes (RabbitMQ + PostgreSQL)"
    )
    up.add_argument("--renderers", type=_positive, default=1, help="renderer processes to start (default 1)")
    up.add_argument("--host", default="127.0.0.1", help="the gateway's address")
    up.add_argument("--port", type=int, default=8001, help="the gateway's port")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def dev_env(base: Mapping[str, str], host: str, port: int) -> dict[str, str]:
    """`base` plus development defaults for whatever it leaves unset, shared by every child."""
    env = dict(base)
    defaults = {
        "ADAGENT_BUS": "rabbitmq",
        "ADAGENT_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "ADAGENT_STORE": "postgres",
        "ADAGENT_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "ADAGENT_HOME": str(Path.home() / ".adagent"),
        # Generated once here, so every child signs and verifies with the same keys.
        "ADAGENT_SIGNING_KEY": secrets.token_urlsafe(32),
        "ADAGENT_JWT_SECRET": secrets.token_urlsafe(32),
        "ADAGENT_PUBLIC_URL": public_url(host, port),
        "ADAGENT_LOG_LEVEL": "INFO",
    }
    for name, value in defaults.items():
        if not env.get(name):
            env[name] = value
    env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, not when a child's buffer fills
    return env


def use_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return not env.get("NO_COLOR") and stream.isatty()


@dataclass
class Child:
    name: str
    service: str
    args: list[str]
    process: asyncio.subprocess.Process | None = None
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: bool = False


def plan(renderers: int, host: str, port: int) -> list[Child]:
    command = ["-m", "services.cli.main", "service"]
    children = [Child("gateway", "gateway", [*command, "gateway", "--host", host, "--port", str(port)])]
    for service in WORKERS:
        if service == "renderer":
            children += [Child(f"renderer.{i}", service, [*command, service]) for i in range(1, renderers + 1)]
        else:
            children.append(Child(service, service, [*command, service]))
    return children


class Output:
    """Writes whole lines under a fixed-width name prefix, coloured per child when asked to."""

    def __init__(self, stream: TextIO, names: list[str], colour: bool) -> None:
        self._stream = stream
        self._width = max(len(n) for n in names)
        self._colours = {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(names)}
        self._colour = colour

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self._width}} |"
        if self._colour:
            prefix = f"\x1b[{self._colours.get(name, 0)}m{prefix}{_RESET}"
        self._stream.write(f"{prefix} {text}\n")
        self._stream.flush()


async def _pump(stream: asyncio.StreamReader, name: str, out: Output) -> None:
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line beyond the reader's limit: print what there is, go on
            raw = await stream.read(64 * 1024)
        if not raw:
            return
        out.line(name, raw.decode(errors="replace").rstrip("\r\n"))


def _say(message: str) -> None:
    print(f"adagent dev: {message}", file=sys.stderr, flush=True)


async def _start(child: Child, env: dict[str, str], out: Output) -> None:
    child.process = await asyncio.create_subprocess_exec(
        sys.executable,
        *child.args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own process group: a Ctrl-C in the terminal reaches `dev up` only, which then stops each child in order.
        start_new_session=True,
    )
    assert child.process.stdout is not None and child.process.stderr is not None
    child.readers = [
        asyncio.create_task(_pump(child.process.stdout, child.name, out)),
        asyncio.create_task(_pump(child.process.stderr, child.name, out)),
    ]


async def _stop_all(children: list[Child], wait_s: float) -> tuple[int, int]:
    """SIGTERM every running child, wait up to `wait_s` seconds, SIGKILL what is left. Returns (clean, killed)."""
    running = [c for c in children if c.process is not None and c.process.returncode is None]
    for child in running:
        assert child.process is not None
        child.stopping = True
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)
    waits = {asyncio.ensure_future(c.process.wait()): c for c in running if c.process is not None}
    killed = 0
    if waits:
        _, pending = await asyncio.wait(waits, timeout=wait_s)
        for task in pending:
            child = waits[task]
            assert child.process is not None
            _say(f"{child.name} did not stop within {wait_s:g}s: killing it")
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            killed += 1
        if pending:
            await asyncio.wait(pending)
    readers = [r for c in children for r in c.readers]
    if readers:
        # A grandchild could hold a pipe open: do not wait on it forever.
        _, late = await asyncio.wait(readers, timeout=2.0)
        for reader in late:
            reader.cancel()
    clean = sum(1 for c in running if c.process is not None and c.process.returncode == 0)
    return clean, killed


async def run_dev_up(renderers: int, host: str, port: int) -> int:
    env = dev_env(os.environ, host, port)
    children = plan(renderers, host, port)
    out = Output(sys.stdout, [c.name for c in children], use_colour(sys.stdout, os.environ))
    grace = _grace(env)
    stop = stop_on_signals()
    loop = asyncio.get_running_loop()
    stopping_at = time.monotonic()
    exits: dict[asyncio.Future[object], Child] = {}
    failed: Child | None = None
    try:
        _say(
            f"starting {len(children)} processes against {env['ADAGENT_AMQP_URL']} (namespace "
            f"{env.get('ADAGENT_AMQP_NAMESPACE') or 'adagent'}) and PostgreSQL (schema "
            f"{env.get('ADAGENT_DATABASE_SCHEMA') or 'public'}); gateway on {env['ADAGENT_PUBLIC_URL']}"
        )
        for child in children:
            await _start(child, env, out)
            assert child.process is not None
            exits[asyncio.ensure_future(child.process.wait())] = child
        stopping: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
        watched: list[asyncio.Future[object]] = [stopping, *exits]
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        ended = [exits[f] for f in done if f in exits]
        if ended:
            failed = ended[0]
            assert failed.process is not None
            _say(f"{failed.name} exited unexpectedly (code {failed.process.returncode}): stopping the rest")
        else:
            _say("stopping every process…")
    finally:
        stopping_at = time.monotonic()
        clean, killed = await _stop_all(children, grace + _KILL_MARGIN)
        for future in exits:
            future.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    stopped = sum(1 for c in children if c.stopping)
    _say(
        f"stopped {stopped} of {len(children)} processes in {time.monotonic() - stopping_at:.1f}s "
        f"({clean} cleanly, {killed} killed" + (f", {failed.name} had died" if failed else "") + ")"
    )
    return 1 if failed is not None else 0


def _grace(env: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(env.get("ADAGENT_SHUTDOWN_GRACE_SECONDS") or 30.0))
    except ValueError:
        return 30.0  # the children refuse to start with it, and say why


async def run(args: argparse.Namespace) -> int:
    return await run_dev_up(args.renderers, args.host, args.port)
