"""The same seed flow with every service connected through the real RabbitMQ broker and the PostgreSQL store."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.bus.rabbitmq import delete_namespace
from services.runtime.store.postgres import drop_schema
from tests.brokers import AMQP_URL, DATABASE_URL, fresh_namespace
from tests.conftest import start_server
from tests.e2e.flow import check_seed_stream, check_video, download, post_stream

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SCRIPT = "Meet Glow, the serum that works while you sleep. Wake up radiant, every single morning."


async def test_create_stream_through_rabbitmq_and_postgres(avatar_data_uri: str, tmp_path: Path) -> None:
    namespace = fresh_namespace("e2e")
    try:
        async for server in start_server(
            tmp_path / "home",
            bus="rabbitmq",
            amqp_url=AMQP_URL,
            amqp_namespace=namespace,
            store="postgres",
            database_url=DATABASE_URL,
            database_schema=namespace,
        ):
            body = {"script": SCRIPT, "character_image": avatar_data_uri, "aspect_ratio": "1:1"}
            complete = check_seed_stream(await post_stream(server.url, body, server.token))
            video = await download(complete["final_video_url"], tmp_path / "ad.mp4")
            check_video(video, SCRIPT, (720, 720))
            history = await server.stack.runtime.store.history(complete["job_id"])
            assert history[0].event.__class__.__name__ == "JobRequested"
            assert history[-1].event.__class__.__name__ == "JobCompleted"
    finally:
        await delete_namespace(AMQP_URL, namespace)
        await drop_schema(DATABASE_URL, namespace)
