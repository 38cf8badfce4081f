"""Credentials a provider refuses (a revoked service-account key, a wrong ElevenLabs key, a bucket role taken away),
through the gateway and the real SDKs against the local fakes: before the job exists the client gets a 502 in the
API's error body, during a job the job ends with an `error` naming the provider and what to check, at once (a
configuration fault is not retried), logged at ERROR with no key, token or signed assertion anywhere in the logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import structlog

from services.runtime.logging import configure_logging
from tests.conftest import Server, start_server
from tests.e2e.flow import post_stream
from tests.fakes.cloud import BUCKET, Cloud
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gemini import FakeGemini
from tests.fakes.google_auth import ServiceAccount, TokenIssuer
from tests.fakes.server import FakeServer
from tests.fakes.veo import FakeVeo
from tests.gateway.jobs_client import client_for, read_events
from tests.logs import logging_restored

LINE = "Wake up radiant, every single morning."  # one clip, one voice piece: every attempt is counted
REVOKED = (
    "Google Cloud rejected the credentials (invalid_grant: the key was revoked or deleted); check "
    "GOOGLE_APPLICATION_CREDENTIALS"
)


@dataclass
class Logs:
    """Everything the server logged, both structlog's JSON lines and the libraries' stdlib logging, as an operator
    running `adagent serve` gets it (at DEBUG, so the libraries' request logs are in it too)."""

    buffer: io.StringIO

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]

    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("level") == "error"]


@pytest.fixture
def logs() -> Iterator[Logs]:
    buffer = io.StringIO()
    with logging_restored():
        configure_logging("DEBUG", json=True)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buffer))
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(buffer)
        yield Logs(buffer)


def assert_no_secret(
    text: str, account: ServiceAccount, *token_endpoints: FakeServer, keys: tuple[str, ...] = ()
) -> None:
    """No private key material, no access token issued, no JWT assertion sent to a token endpoint, no API key."""
    pem = account.private_key_pem().splitlines()
    assertions = [
        parse_qs(call.body.decode()).get("assertion", [""])[0]
        for server in token_endpoints
        for call in server.calls("POST", r"^/token$")
    ]
    assert all(assertions) and assertions, "no token exchange was attempted"
    for secret in ("PRIVATE KEY", *pem[1:-1], *account.issued_tokens, *assertions, *keys):
        assert secret not in text


async def _failed_stream(server: Server, avatar: str) -> tuple[dict[str, Any], str]:
    """The `error` event of a job made by create-stream, and the job's error as its status tells it."""
    result = await post_stream(server.url, {"script": LINE, "character_image": avatar}, server.token)
    assert result.names[-1] == "error", result.raw
    error = result.data("error")[0]
    async with client_for(server.url, server.token) as client:
        status = (await client.get(f"/api/ad-agent/jobs/{error['job_id']}")).json()
    assert status["status"] == "failed"
    return error, status["error"]


# -- (a) before the job exists: the avatar's upload to Cloud Storage ---------------------------------------------------
@pytest.mark.parametrize("route", ["create-stream", "create"])
async def test_a_revoked_key_at_create_answers_502_with_the_reason_logged_once_without_secrets(
    cloud: Cloud, avatar_data_uri: str, tmp_path: Path, logs: Logs, route: str
) -> None:
    cloud.account.revoked = True
    async for server in start_server(tmp_path / "home", storage="gcs"):
        async with client_for(server.url, server.token) as client:
            response = await client.post(
                f"/api/ad-agent/{route}", json={"script": LINE, "character_image": avatar_data_uri}
            )
            jobs = (await client.get("/api/ad-agent/jobs")).json()["jobs"]

    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status_code": 502, "detail": REVOKED}
    assert jobs == []  # no job was made
    [logged] = logs.errors()
    assert logged["event"] == "gateway.provider_failed" and logged["path"] == f"/api/ad-agent/{route}"
    assert "invalid_grant" in logged["exception"]  # the operator gets Google's own answer...
    assert_no_secret(logs.text, cloud.account, cloud.gcs, keys=(cloud.gemini.api_key, cloud.elevenlabs.api_key))
    assert "/token" in logs.text  # ...and the libraries' debug logs were captured
    assert not [line for line in logs.text.splitlines() if line.startswith(("ERROR ", "CRITICAL "))]


async def test_a_token_endpoint_out_of_reach_at_create_answers_503(
    cloud: Cloud, avatar_data_uri: str, tmp_path: Path, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = cloud.account.write_key_file(tmp_path / "sa-offline.json", "http://127.0.0.1:9/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(unreachable))
    monkeypatch.setenv("ADAGENT_GCS_RETRY_DEADLINE_SECONDS", "1")
    async for server in start_server(tmp_path / "home", storage="gcs"):
        async with client_for(server.url, server.token) as client:
            body = {"script": LINE, "character_image": avatar_data_uri}
            response = await client.post("/api/ad-agent/create-stream", json=body)
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"Cloud Storage upload of gs://{BUCKET}/ads/jobs/"), detail
    assert detail.endswith(" kept failing: Google's token endpoint could not be reached (ConnectionError)"), detail
    [logged] = logs.errors()
    assert logged["event"] == "gateway.provider_failed"


# -- (b) Google's token endpoint refuses the key in the middle of a job ------------------------------------------------
@pytest.fixture
def vertex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeServer], ServiceAccount]:
    """Point Vertex AI at a fake (Veo's or Gemini's), its key's token endpoint on that fake; Cloud Storage stays
    local, so Google's first refusal comes from the step that calls Vertex AI."""

    def point_at(fake: FakeServer) -> ServiceAccount:
        account: ServiceAccount = fake.account  # type: ignore[attr-defined]
        key = account.write_key_file(tmp_path / "sa.json", fake.tokens.token_uri(fake))  # type: ignore[attr-defined]
        for name, value in {
            "GOOGLE_APPLICATION_CREDENTIALS": str(key),
            "GOOGLE_CLOUD_PROJECT": account.project,
            "GOOGLE_VERTEX_BASE_URL": fake.url,
            "ADAGENT_VEO_POLL_SECONDS": "0.05",
            "ADAGENT_VEO_REQUESTS_PER_MINUTE": "6000",
        }.items():
            monkeypatch.setenv(name, value)
        return account

    return point_at


async def test_veo_meeting_a_revoked_key_ends_the_job_naming_google_and_the_variable(
    vertex: Callable[[FakeServer], ServiceAccount], avatar_data_uri: str, tmp_path: Path, logs: Logs
) -> None:
    with FakeVeo() as veo:
        account = vertex(veo)
        account.revoked = True
        async for server in start_server(tmp_path / "home", renderer="veo"):
            error, status_error = await _failed_stream(server, avatar_data_uri)
    assert isinstance(veo, FakeVeo)
    assert error["message"] == f"Failed to generate clip 1/1: {REVOKED}"
    assert error["step"] == 2 and status_error == error["message"]
    assert len(veo.calls("POST", r"^/token$")) == 1  # refused once, not retried by redelivery
    assert veo.generate_calls == []
    [logged] = logs.errors()
    assert logged["event"] == "renderer.failed"
    assert_no_secret(logs.text, account, veo)


async def test_veo_refusing_the_token_with_401_ends_the_job_naming_veo_and_the_variable(
    vertex: Callable[[FakeServer], ServiceAccount], avatar_data_uri: str, tmp_path: Path, logs: Logs
) -> None:
    with FakeVeo() as veo:
        vertex(veo)
        veo.fail_next("POST", r":predictLongRunning$", TokenIssuer.unauthenticated(), times=100)
        async for server in start_server(tmp_path / "home", renderer="veo"):
            error, _ = await _failed_stream(server, avatar_data_uri)
    assert isinstance(veo, FakeVeo)
    assert error["message"] == (
        "Failed to generate clip 1/1: Veo rejected the credentials (401 UNAUTHENTICATED: Request had invalid "
        "authentication credentials.); check GOOGLE_APPLICATION_CREDENTIALS"
    )
    assert len(veo.generate_calls) == 1  # not retried
    assert [r["event"] for r in logs.errors()] == ["renderer.failed"]


async def test_gemini_on_vertex_meeting_a_revoked_key_ends_the_job_naming_google_and_the_variable(
    vertex: Callable[[FakeServer], ServiceAccount],
    avatar_data_uri: str,
    tmp_path: Path,
    logs: Logs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    with FakeGemini() as gemini:
        account = vertex(gemini)
        account.revoked = True
        async for server in start_server(tmp_path / "home", prompter="gemini"):
            error, _ = await _failed_stream(server, avatar_data_uri)
    assert isinstance(gemini, FakeGemini)
    assert error["message"] == f"Failed to generate video prompts: {REVOKED}"
    assert error["step"] == 1
    assert len(gemini.calls("POST", r"^/token$")) == 1 and gemini.generate_calls() == []
    [logged] = logs.errors()
    assert logged["event"] == "prompter.failed"
    assert_no_secret(logs.text, account, gemini, keys=(gemini.api_key,))


# -- (c) ElevenLabs refuses the key at step 4 --------------------------------------------------------------------------
async def test_a_wrong_elevenlabs_key_ends_the_job_at_step_4_naming_elevenlabs_and_the_variable(
    avatar_data_uri: str, tmp_path: Path, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_key = "sk_revoked_0123456789abcdef"
    with FakeElevenLabs(delay_s=0.0) as elevenlabs:
        assert isinstance(elevenlabs, FakeElevenLabs)
        monkeypatch.setenv("ELEVENLABS_API_KEY", wrong_key)
        monkeypatch.setenv("ADAGENT_ELEVENLABS_BASE_URL", elevenlabs.url)
        async for server in start_server(tmp_path / "home", voice="elevenlabs"):
            error, status_error = await _failed_stream(server, avatar_data_uri)
    assert error["message"] == (
        "Failed to enhance the voice: ElevenLabs rejected the API key (HTTP 401: invalid_api_key: Invalid API key); "
        "check ELEVENLABS_API_KEY"
    )
    assert error["step"] == 4 and status_error == error["message"]
    assert len(elevenlabs.calls("POST", r"^/v1/")) == 1  # one piece, asked once
    [logged] = logs.errors()
    assert logged["event"] == "voice.failed"
    assert wrong_key not in logs.text and elevenlabs.api_key not in logs.text


# -- (d) Cloud Storage denies an upload in the middle of a job ---------------------------------------------------------
async def test_a_bucket_role_taken_away_mid_job_ends_it_naming_cloud_storage_and_what_to_check(
    cloud: Cloud, avatar_data_uri: str, tmp_path: Path, logs: Logs
) -> None:
    async for server in start_server(tmp_path / "home", storage="gcs"):
        async with client_for(server.url, server.token) as client:
            created = await client.post(
                "/api/ad-agent/create", json={"script": LINE, "character_image": avatar_data_uri}
            )
            assert created.status_code == 202, created.text  # the avatar is in the bucket...
            cloud.gcs.deny("storage.objects.create")  # ...and then the account loses the right to write there
            events = await read_events(client, created.json()["events_url"])
            status = (await client.get(created.json()["status_url"])).json()
    error = events[-1].json()
    assert events[-1].event == "error", [m.event for m in events]
    denied = (
        f"{cloud.account.email} does not have storage.objects.create access to the Google Cloud Storage object. "
        "Permission 'storage.objects.create' denied on resource (or it may not exist)."
    )
    assert error["message"] == (
        f"Failed to generate clip 1/1: Cloud Storage denied access to bucket {BUCKET} (403: {denied}); check the "
        "service account's roles on the bucket (Storage Object Admin, or Storage Object Creator and Viewer)"
    )
    assert error["step"] == 2 and status["error"] == error["message"]
    uploads = cloud.gcs.calls("POST", r"^/upload/storage/v1/b/")
    assert len(uploads) == 2  # the avatar, then the clip refused once: not retried
    [logged] = logs.errors()
    assert logged["event"] == "renderer.failed"
    assert_no_secret(logs.text, cloud.account, cloud.gcs)


async def test_a_status_read_whose_link_signing_is_denied_answers_502(
    cloud: Cloud, avatar_data_uri: str, tmp_path: Path, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links are signed at each read; here through IAM signBlob, as an account the server may not sign as."""
    signer = "someone-else@adagent-test.iam.gserviceaccount.com"
    monkeypatch.setenv("ADAGENT_GCS_SIGNER_EMAIL", signer)
    monkeypatch.setenv("ADAGENT_GCS_IAM_ENDPOINT", cloud.gcs.url)
    async for server in start_server(tmp_path / "home", storage="gcs"):
        async with client_for(server.url, server.token) as client:
            created = await client.post(
                "/api/ad-agent/create", json={"script": LINE, "character_image": avatar_data_uri}
            )
            job_id = created.json()["job_id"]
            for _ in range(600):
                job = await server.stack.runtime.store.job(job_id)
                if job is not None and job.finished:
                    break
                await asyncio.sleep(0.05)
            assert job is not None and job.status == "completed"
            response = await client.get(f"/api/ad-agent/jobs/{job_id}")
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    assert detail.startswith(
        f"IAM denied signing download links as {signer} (403: Permission 'iam.serviceAccounts.signBlob' denied"
    ), detail
    assert detail.endswith(f"Service Account Token Creator role on {signer}, or check ADAGENT_GCS_SIGNER_EMAIL")
    [logged] = logs.errors()
    assert logged["event"] == "gateway.provider_failed"
    assert_no_secret(logs.text, cloud.account, cloud.gcs)
