"""What the OpenAPI document allows, the server takes: schemathesis draws schema-valid requests (positive mode) for
every operation from /openapi.json, and none may be refused with a 4xx, nor fail with a 5xx.

The document has to state every rule the server enforces for that (lengths, enums, patterns, ranges, the
control-character rule, the data URI form of `character_image`), so a client that validates against it never sends
what the server refuses. Three things no schema can state are given to the generated requests, and only those:

* `character_image` must decode to a real picture: the generated data URI keeps its own media type and parameters,
  and its base64 payload is replaced by a real 64x64 PNG (a random base64 string is never an image);
* `job_id` is one of the user's jobs (an id of the right form that names no job is a legitimate 404);
* the credential is a valid bearer token.

A 401 from the login (the generated password is not ann's), a 403 from /files (the generated signature is not one),
a 409 for an `Idempotency-Key` sent before with another body and a 429 are legitimate answers, not refusals.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis.strategies import SearchStrategy
from PIL import Image
from schemathesis import APIOperation, GenerationMode
from schemathesis import Case as _Case

from tests.conftest import Server, start_server
from tests.gateway.fake_dns import FakeDns

Case = _Case[APIOperation]  # type: ignore[type-arg]

MAX_EXAMPLES = 30  # per operation
BUDGET_SECONDS = 60.0
_DATA_URI_PREFIX = re.compile(r"^\s*(data:[^,]*;base64,)", re.S)


def _avatar() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 90)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


AVATAR_BASE64 = _avatar()


def legitimate(label: str, status: int, case: Case, keys_sent: set[str]) -> bool:
    """A 4xx that a schema-valid request may get for reasons the document states but generation cannot know."""
    if status == 401:
        return label == "POST /api/auth/login"  # the generated password is not the user's
    if status == 403:
        return label.startswith("GET /files/")  # a signature is a credential
    if status == 409:  # the same key came before with another body
        return (case.headers or {}).get("Idempotency-Key") in keys_sent
    return status == 429


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    refused: dict[tuple[str, int, str], str] = field(default_factory=dict)  # (operation, status, error's start)
    cases: int = 0
    out_of_time: bool = False

    def report(self) -> str:
        lines = [
            f"{self.cases} schema-valid cases" + (" (out of time: the last were skipped)" if self.out_of_time else "")
        ]
        for label in sorted({label for label, _ in self.statuses}):
            answers = sorted((status, n) for (name, status), n in self.statuses.items() if name == label)
            lines.append(f"    {label}: " + ", ".join(f"{n}x {status}" for status, n in answers))
        for (label, status, _), detail in sorted(self.refused.items()):
            lines.append(f"  {status} for a schema-valid request to {label}:\n    {detail}")
        return "\n".join(lines)


def with_real_avatar(case: Case) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("character_image"), str):
        prefix = _DATA_URI_PREFIX.match(body["character_image"])
        assert prefix is not None, f"the schema allowed {body['character_image'][:80]!r}"
        body["character_image"] = prefix.group(1) + AVATAR_BASE64


def _run(strategy: SearchStrategy[Case], test: Callable[[Case], None]) -> None:
    settings = hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    settings(hypothesis.given(case=strategy)(test))()


def fuzz_positive(base_url: str, token: str, job_id: str, only: set[str] | None = None) -> Tally:
    config = schemathesis.Config.from_dict({"request-timeout": 10, "max-stream-events": 1})
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config, timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + BUDGET_SECONDS
    tally = Tally()
    keys_sent: set[str] = set()
    with requests.Session() as session:

        def check(case: Case) -> None:
            if time.monotonic() > deadline:
                tally.out_of_time = True
                return
            label = case.operation.label
            with_real_avatar(case)
            tally.cases += 1
            response = case.call(session=session, headers=headers)
            status = response.status_code
            tally.statuses[label, status] += 1
            if status >= 500 or (status >= 400 and not legitimate(label, status, case, keys_sent)):
                why = response.text[:60]
                tally.refused.setdefault((label, status, why), f"{response.text[:300]}\n    {case.as_curl_command()}")
            key = (case.headers or {}).get("Idempotency-Key")
            if key is not None:
                keys_sent.add(key)

        for operation in operations:
            if only is not None and operation.label not in only:
                continue
            pinned = {"job_id": job_id} if "{job_id}" in operation.path else None
            _run(operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=pinned), check)
    return tally


CREATE = {"POST /api/ad-agent/create", "POST /api/ad-agent/create-stream"}


@asynccontextmanager
async def gateway(home: Path, **settings: Any) -> AsyncIterator[tuple[Server, str]]:
    """The gateway alone (jobs are created and stay queued, nothing renders; webhooks resolve no name), with one job
    of the user's for the operations on a job."""
    async for server in start_server(home, {"workers": ()}, max_queued_per_user=100_000, **settings):
        server.stack.webhooks._resolve = FakeDns({})  # generated webhook hosts: never a real DNS lookup
        headers = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            body = {"script": "Hi there.", "character_image": "data:image/png;base64," + AVATAR_BASE64}
            created = await client.post("/api/ad-agent/create", json=body)
        assert created.status_code == 202, created.text
        yield server, created.json()["job_id"]


@pytest.mark.timeout(180)
async def test_every_schema_valid_request_is_accepted(tmp_path: Path) -> None:
    async with gateway(tmp_path / "home") as (server, job_id):
        started = time.monotonic()
        tally = await asyncio.to_thread(fuzz_positive, server.url, server.token, job_id)
    print(f"\n{tally.report()}\n    in {time.monotonic() - started:.1f}s")
    labels = {label for label, _ in tally.statuses}
    assert len(labels) >= 10 and CREATE | {"POST /api/auth/login"} <= labels, tally.report()
    accepted = {label for (label, status), n in tally.statuses.items() if status < 400}
    assert CREATE <= accepted, tally.report()
    assert not tally.refused, tally.report()


# The parts of the create bodies that follow the gateway's settings: ElevenLabs' voice ids, Veo's own voice (voice_id
# null only), webhooks allowed inside the network, a shorter script limit.
@pytest.mark.parametrize(
    "settings",
    [
        {"voice": "elevenlabs", "webhook_allow_private": True, "max_script_chars": 40},
        {"renderer": "veo"},
    ],
    ids=["elevenlabs voices, private webhooks, short scripts", "veo"],
)
@pytest.mark.timeout(120)
async def test_the_create_bodies_follow_the_settings(tmp_path: Path, settings: dict[str, Any]) -> None:
    async with gateway(tmp_path / "home", **settings) as (server, job_id):
        tally = await asyncio.to_thread(fuzz_positive, server.url, server.token, job_id, CREATE)
    print(f"\n{tally.report()}")
    assert CREATE <= {label for (label, status), n in tally.statuses.items() if status < 400}, tally.report()
    assert not tally.refused, tally.report()
