"""`python -m services.NAME`, DESIGN.md's entry point of each service, as an operator runs it: the same process as
`adagent service NAME`, with the same argument handling, exit codes and messages, and a whole job through the five
of them started that way."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.service_cmd import SERVICES
from tests.brokers import fresh_namespace
from tests.e2e.flow import check_seed_stream, post_stream
from tests.e2e.processes import COMMAND, PASSWORD, USER, distributed_env, free_port, healthy, login, stop_and_clean_up


def _module(name: str) -> list[str]:
    return [sys.executable, "-m", f"services.{name}"]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    """The default in-process bus, which a service alone cannot use: both commands must refuse it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAGENT_")}
    return {**env, "ADAGENT_HOME": str(tmp_path / "home")}


@pytest.mark.parametrize("name", SERVICES)
def test_without_rabbitmq_it_exits_2_with_the_message_of_adagent_service(name: str, tmp_path: Path) -> None:
    env = _embedded_env(tmp_path)
    by_module = _run(_module(name), env)
    by_cli = _run([*COMMAND, "service", name], env)
    assert by_module.returncode == by_cli.returncode == 2, by_module.stderr
    assert by_module.stderr == by_cli.stderr
    assert by_module.stderr.startswith("adagent: bad setting: ADAGENT_BUS must be rabbitmq")
    assert by_module.stdout == by_cli.stdout == ""


@pytest.mark.parametrize("args", [["--port", "eighty"], ["--color"]])
def test_the_gateway_takes_the_same_arguments(args: list[str], tmp_path: Path) -> None:
    env = _embedded_env(tmp_path)
    by_module = _run([*_module("gateway"), *args], env)
    by_cli = _run([*COMMAND, "service", "gateway", *args], env)
    assert by_module.returncode == by_cli.returncode == 2
    assert by_module.stderr == by_cli.stderr and "error:" in by_module.stderr


def _start_by_module(env: dict[str, str], port: int) -> dict[str, subprocess.Popen[str]]:
    """Add the user, then start each service as `python -m services.NAME` (the gateway on `port`)."""
    subprocess.run(
        [*COMMAND, "users", "add", USER, "--password-stdin"],
        input=f"{PASSWORD}\n", env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {
        name: subprocess.Popen(
            [*_module(name), *(["--port", str(port)] if name == "gateway" else [])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in SERVICES
    }


@pytest.mark.rabbitmq
@pytest.mark.postgres
async def test_the_five_entry_points_run_a_job_and_stop_cleanly(avatar_data_uri: str, tmp_path: Path) -> None:
    namespace = fresh_namespace("main")
    port = free_port()
    env = distributed_env(tmp_path, namespace, port)
    processes = await asyncio.to_thread(_start_by_module, env, port)
    try:
        url = f"http://127.0.0.1:{port}"
        await healthy(url, processes)
        body = {"script": "Wake up radiant, every single morning.", "character_image": avatar_data_uri}
        check_seed_stream(await post_stream(url, body, await login(url)))
    finally:
        errors = await stop_and_clean_up(processes, namespace)
    for name, process in processes.items():
        assert process.returncode == 0, (name, errors[name][-2000:])
        assert f"adagent {name} stopped" in errors[name], (name, errors[name][-2000:])
