from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.cli.server import bind, public_url, running_server
from services.runtime.settings import Settings, load_settings
from services.stack import Stack

pytest_plugins = ["tests.ci_skips"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_AVATAR = ROOT / "examples" / "avatar.jpg"


@pytest.fixture(scope="session")
def avatar_data_uri() -> str:
    return "data:image/jpeg;base64," + base64.b64encode(EXAMPLE_AVATAR.read_bytes()).decode()


@dataclass
class Server:
    url: str
    stack: Stack
    settings: Settings
    token: str = ""  # a bearer token of user "ann", made at start

    async def token_for(self, username: str) -> str:
        auth = self.stack.app.state.auth
        if username not in await auth.accounts.list_users():
            await auth.accounts.add_user(username, f"{username}-password-123")
        token, _ = auth.issue_token(username)
        return str(token)


async def start_server(
    home: Path, providers: dict[str, Any] | None = None, **overrides: object
) -> AsyncIterator[Server]:
    sock = bind("127.0.0.1", 0)
    url = public_url("127.0.0.1", sock.getsockname()[1])
    settings = load_settings({"ADAGENT_HOME": str(home)}, public_url=url, **overrides)
    async with running_server(settings, sock, **(providers or {})) as stack:
        server = Server(url, stack, settings)
        server.token = await server.token_for("ann")
        yield server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async for s in start_server(tmp_path / "home"):
        yield s

