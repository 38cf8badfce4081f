"""Faults a step can meet: a message its handler always fails on (poison), and a clip render that hangs. Both are
retried through redelivery, then the job ends with an `error` naming the step and the reason; nothing else stalls."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contracts.commands import RenderClip
from services.renderer.local import LocalClipRenderer
from services.renderer.port import RenderedClip
from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.errors import TransientError
from tests.brokers import AMQP_URL, dead_letters, fresh_namespace
from tests.conftest import start_server
from tests.gateway.jobs_client import client_for, read_events

POISON = "This line will never render, whatever happens."
GOOD = "Wake up radiant, every single morning."


class FlakyRenderer:
    """Fails every delivery of a clip of the poison line; hangs on the first try of the hanging line."""

    def __init__(self, *, hang_first: int = 0) -> None:
        self.inner = LocalClipRenderer()
        self.attempts: dict[str, int] = {}
        self.hang_first = hang_first

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        line = command.clip.line
        self.attempts[line] = self.attempts.get(line, 0) + 1
        if line == POISON:
            raise TransientError("the provider is busy")
        if self.attempts[line] <= self.hang_first:
            await asyncio.sleep(3600)
        return await self.inner.render(command, avatar, out)


async def _run(server_url: str, token: str, avatar: str, script: str) -> list[tuple[str, dict[str, object]]]:
    async with client_for(server_url, token) as client:
        created = (await client.post("/api/ad-agent/create", json={"script": script, "character_image": avatar})).json()
        return [(m.event, m.json()) for m in await read_events(client, created["events_url"])]


@pytest.mark.parametrize("bus", ["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def test_poison_message_fails_its_job_and_nothing_else_stalls(
    tmp_path: Path, avatar_data_uri: str, bus: str
) -> None:
    namespace = fresh_namespace("poison")
    renderer = FlakyRenderer()
    extra = {"bus": "rabbitmq", "amqp_url": AMQP_URL, "amqp_namespace": namespace} if bus == "rabbitmq" else {}
    try:
        async for server in start_server(tmp_path / "home", {"renderer": renderer}, **extra):
            poisoned, healthy = await asyncio.gather(
                _run(server.url, server.token, avatar_data_uri, POISON),
                _run(server.url, server.token, avatar_data_uri, GOOD),
            )
            assert poisoned[-1][0] == "error"
            error = poisoned[-1][1]
            assert error["step"] == 2
            assert error["message"] == "Generating a clip failed after 5 attempts: the provider is busy"
            assert renderer.attempts[POISON] == 5
            assert healthy[-1][0] == "complete"
            if bus == "rabbitmq":
                assert await dead_letters(namespace, "renderer") == 1
    finally:
        if bus == "rabbitmq":
            await delete_namespace(AMQP_URL, namespace)


async def test_a_hanging_render_is_retried_after_its_deadline(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = FlakyRenderer(hang_first=1)
    # Long enough for a real render (with the voice model loading), far shorter than the hang.
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, clip_deadline_seconds=6.0):
        events = await _run(server.url, server.token, avatar_data_uri, GOOD)
        assert events[-1][0] == "complete"
        assert renderer.attempts[GOOD] == 2


async def test_a_render_that_always_hangs_ends_in_an_error(tmp_path: Path, avatar_data_uri: str) -> None:
    renderer = FlakyRenderer(hang_first=99)
    async for server in start_server(tmp_path / "home", {"renderer": renderer}, clip_deadline_seconds=0.5):
        events = await _run(server.url, server.token, avatar_data_uri, GOOD)
        assert events[-1][0] == "error"
        assert events[-1][1]["message"] == "Generating a clip failed after 5 attempts: clip 1/1 took longer than 0.5 s"
