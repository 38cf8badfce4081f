"""Step 1 through the real google-genai SDK against a fake Gemini: both client modes, the request's image and schema,
retries on 429/5xx, permanent 4xx, safety blocks, the script check with its one corrected retry, configuration."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import google.auth
import google.auth.exceptions
import pytest

from contracts.events import JobFailed, JobRequested, JobStarted
from contracts.prompt_plan import response_json_schema
from services.prompter.gemini import DEFAULT_MODEL, GeminiConfig, GeminiPromptWriter, ProviderError
from services.prompter.handler import handle_job_started
from services.prompter.script_split import split_script
from services.runtime.context import open_runtime
from services.runtime.errors import TransientError
from services.runtime.google_client import GoogleClientConfig, backoff_delay
from services.runtime.settings import SettingsError, load_settings
from services.runtime.storage.local import LocalStorage
from services.runtime.storage.signing import UrlSigner
from tests.fakes.gemini import FakeGemini, answer_blocked, decode_bytes, field, good_plan, prompt_blocked
from tests.fakes.server import google_error

ROOT = Path(__file__).resolve().parents[2]
AVATAR = (ROOT / "examples" / "avatar.jpg").read_bytes()
SCRIPT = (
    "Tired of dull skin? Meet Glow, the overnight serum that works while you sleep. "
    "Packed with vitamin C and hyaluronic acid, it restores your natural radiance and smooths fine lines. "
    "Wake up radiant. Order today and get twenty percent off your first bottle!"
)
GENERATE = ":generateContent"


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:  # one server for the file: stopping one takes half a second
        yield server  # type: ignore[misc]


@pytest.fixture
def fake(shared_fake: FakeGemini) -> FakeGemini:
    shared_fake.reset()
    return shared_fake


@pytest.fixture
async def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects", UrlSigner(b"k" * 32), "http://127.0.0.1:1")


@pytest.fixture
async def job(storage: LocalStorage) -> JobRequested:
    ref = await storage.put_bytes("jobs/j1/avatar.jpg", AVATAR, "image/jpeg")
    return JobRequested(
        event_id="j1:requested",
        job_id="j1",
        script=SCRIPT,
        avatar_ref=ref,
        character_name="Ava",
        voice_id=None,
        aspect_ratio="9:16",
        resolution="720p",
    )


def fast(config: GeminiConfig) -> GeminiConfig:
    return dataclasses.replace(config, backoff_seconds=0.01, max_backoff_seconds=0.05)


def developer_env(fake: FakeGemini) -> dict[str, str]:
    return {"GOOGLE_API_KEY": fake.api_key, "GOOGLE_GEMINI_BASE_URL": fake.url}


def vertex_env(fake: FakeGemini, tmp_path: Path) -> dict[str, str]:
    key = fake.account.write_key_file(tmp_path / "sa.json", fake.tokens.token_uri(fake))
    return {
        "GOOGLE_GENAI_USE_VERTEXAI": "true",
        "GOOGLE_CLOUD_PROJECT": fake.account.project,
        "GOOGLE_CLOUD_LOCATION": "europe-west4",
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "GOOGLE_VERTEX_BASE_URL": fake.url,
        "GOOGLE_API_KEY": "must-not-be-used-in-vertex-mode",
    }


@pytest.fixture
async def writer(fake: FakeGemini, storage: LocalStorage) -> AsyncIterator[GeminiPromptWriter]:
    w = GeminiPromptWriter(fast(GeminiConfig.from_env(developer_env(fake))), storage)
    yield w
    await w.aclose()


def texts(content: dict[str, Any]) -> str:
    return "\n".join(p["text"] for p in content["parts"] if "text" in p)


# -- success -------------------------------------------------------------------------------------------------------


async def test_developer_api_plan_carries_the_avatar_and_the_schema(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested
) -> None:
    clips = await writer.write_prompts(job)

    expected = good_plan(SCRIPT)["clips"]
    assert [c.index for c in clips] == list(range(1, len(expected) + 1))
    assert [c.line for c in clips] == split_script(SCRIPT)
    assert [c.prompt for c in clips] == [e["visual_prompt"] for e in expected]
    assert [c.est_seconds for c in clips] == [e["duration_seconds"] for e in expected]

    [call] = fake.generate_calls()
    assert call.path == f"/v1/models/{DEFAULT_MODEL}:generateContent"  # google-genai 3.x defaults to v1
    assert call.headers["x-goog-api-key"] == fake.api_key
    assert "authorization" not in call.headers
    body = call.json()
    [content] = body["contents"]
    image = next(p["inlineData"] for p in content["parts"] if "inlineData" in p)
    assert field(image, "mimeType") == "image/jpeg"
    assert decode_bytes(image["data"]) == AVATAR
    assert SCRIPT in texts(content) and "Ava" in texts(content)
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == response_json_schema()
    assert "$ref" not in json.dumps(config["responseJsonSchema"])
    item = config["responseJsonSchema"]["properties"]["clips"]["items"]
    assert item["required"] == ["line", "visual_prompt", "duration_seconds"]
    assert item["properties"]["duration_seconds"]["maximum"] == 8


async def test_vertex_mode_sends_project_location_and_a_bearer_token(
    fake: FakeGemini, storage: LocalStorage, job: JobRequested, tmp_path: Path
) -> None:
    config = fast(GeminiConfig.from_env({**vertex_env(fake, tmp_path), "ADAGENT_GEMINI_MODEL": "gemini-3.8-flash"}))
    writer = GeminiPromptWriter(config, storage, work_dir=tmp_path)
    try:
        clips = await writer.write_prompts(job)
    finally:
        await writer.aclose()

    assert [c.line for c in clips] == split_script(SCRIPT)
    [call] = fake.generate_calls()
    assert call.path == (
        f"/v1beta1/projects/{fake.account.project}/locations/europe-west4"
        "/publishers/google/models/gemini-3.8-flash:generateContent"
    )
    assert call.headers["authorization"].removeprefix("Bearer ") in fake.tokens.issued
    assert "x-goog-api-key" not in call.headers
    assert len(fake.calls("POST", "^/token$")) == 1  # a fresh client fetches one token
    body = call.json()
    assert any("inlineData" in p for p in body["contents"][0]["parts"])
    assert body["generationConfig"]["responseJsonSchema"] == response_json_schema()


async def test_gemini_api_key_is_read_too(fake: FakeGemini, storage: LocalStorage, job: JobRequested) -> None:
    config = GeminiConfig.from_env({"GEMINI_API_KEY": fake.api_key, "GOOGLE_GEMINI_BASE_URL": fake.url})
    writer = GeminiPromptWriter(config, storage)
    try:
        assert len(await writer.write_prompts(job)) == len(split_script(SCRIPT))
    finally:
        await writer.aclose()


# -- provider errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [(429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE"), (500, "INTERNAL")])
async def test_busy_answers_are_retried_then_succeed(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested, code: int, status: str
) -> None:
    fake.fail_next("POST", GENERATE, google_error(code, status, "Resource has been exhausted (e.g. check quota)."), 2)
    clips = await writer.write_prompts(job)
    assert [c.line for c in clips] == split_script(SCRIPT)
    assert len(fake.generate_calls()) == 3


async def test_429_that_never_clears_is_transient(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested
) -> None:
    fake.fail_next("POST", GENERATE, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for metric"), 99)
    with pytest.raises(TransientError, match=r"429 RESOURCE_EXHAUSTED: Quota exceeded"):
        await writer.write_prompts(job)
    assert len(fake.generate_calls()) == 4  # max_attempts, then the bus redelivers


async def test_an_unreachable_endpoint_is_transient(storage: LocalStorage, job: JobRequested) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    config = fast(GeminiConfig.from_env({"GOOGLE_API_KEY": "k", "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{port}"}))
    writer = GeminiPromptWriter(config, storage)
    try:
        with pytest.raises(TransientError, match="Gemini did not answer after 4 attempts: ConnectError"):
            await writer.write_prompts(job)
    finally:
        await writer.aclose()


def test_backoff_honours_googles_retry_info() -> None:
    from google.genai import errors

    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "slow down",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }
    exc = errors.ClientError(429, body)
    assert backoff_delay(1, base=0.01, cap=30, exc=exc) == 7.0
    assert backoff_delay(1, base=0.01, cap=5, exc=exc) == 7.0  # the cap is for our own backoff, not the server's wait
    assert 0.5 <= backoff_delay(1, base=1, cap=30) <= 1.0
    assert 4 <= backoff_delay(4, base=1, cap=30) <= 8


class ScaledTime:
    """A clock that moves only when the code under test sleeps: a 40 s wait takes no time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


QUOTA = "Resource has been exhausted (e.g. check quota)."


async def test_the_wait_gemini_asks_for_is_honoured_whole(
    fake: FakeGemini, storage: LocalStorage, job: JobRequested
) -> None:
    scaled = ScaledTime()
    config = dataclasses.replace(GeminiConfig.from_env(developer_env(fake)), max_backoff_seconds=30.0)
    writer = GeminiPromptWriter(config, storage, clock=scaled.clock, sleep=scaled.sleep)
    fake.fail_next("POST", GENERATE, google_error(429, "RESOURCE_EXHAUSTED", QUOTA, retry_after_s=40))
    try:
        clips = await writer.write_prompts(job)
    finally:
        await writer.aclose()
    assert [c.line for c in clips] == split_script(SCRIPT)
    assert scaled.slept == [40.0]  # what RetryInfo said, not capped at 30 s
    assert len(fake.generate_calls()) == 2


async def test_a_wait_past_the_deadline_ends_the_job_naming_the_wait(fake: FakeGemini, tmp_path: Path) -> None:
    scaled = ScaledTime()
    config = GeminiConfig.from_env({**developer_env(fake), "ADAGENT_GEMINI_DEADLINE_SECONDS": "30"})
    rt = await open_runtime(load_settings(env={}, home=tmp_path / "home"))
    writer = GeminiPromptWriter(config, rt.storage, clock=scaled.clock, sleep=scaled.sleep)
    fake.fail_next("POST", GENERATE, google_error(429, "RESOURCE_EXHAUSTED", QUOTA, retry_after_s=40))
    try:
        ref = await rt.storage.put_bytes("jobs/j2/avatar.jpg", AVATAR, "image/jpeg")
        await rt.recorder.record(
            JobRequested(
                event_id="j2:requested",
                job_id="j2",
                script=SCRIPT,
                avatar_ref=ref,
                character_name="Ava",
                voice_id=None,
                aspect_ratio="16:9",
                resolution="720p",
            )
        )
        started = await rt.recorder.record(JobStarted(event_id="j2:started", job_id="j2"))
        await handle_job_started(started.recorded, rt=rt, writer=writer)
        failed = (await rt.history("j2")).first(JobFailed)
    finally:
        await writer.aclose()
        await rt.close()
    assert failed is not None and failed.step == 1
    assert failed.message == (
        "Failed to generate video prompts: Gemini asked to wait 40 s before trying again "
        f"(429 RESOURCE_EXHAUSTED: {QUOTA}), longer than the 30 s left of the 30 s the prompts may take "
        "(ADAGENT_GEMINI_DEADLINE_SECONDS)"
    )
    assert scaled.slept == []  # it did not wait in vain
    assert len(fake.generate_calls()) == 1


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        (403, "PERMISSION_DENIED", "Generative Language API has not been used in project 12345 before."),
        (404, "NOT_FOUND", "models/gemini-0-flash is not found for API version v1."),
    ],
)
async def test_other_4xx_fail_at_once_with_googles_reason(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested, code: int, status: str, message: str
) -> None:
    fake.fail_next("POST", GENERATE, google_error(code, status, message))
    with pytest.raises(ProviderError) as caught:
        await writer.write_prompts(job)
    assert str(caught.value) == f"Gemini rejected the request: {code} {status}: {message}"
    assert len(fake.generate_calls()) == 1


async def test_a_blocked_prompt_is_a_clear_error_and_not_retried(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested
) -> None:
    fake.queue_response(prompt_blocked("PROHIBITED_CONTENT"))
    with pytest.raises(ProviderError, match=r"Gemini blocked the request \(PROHIBITED_CONTENT\)") as caught:
        await writer.write_prompts(job)
    assert "HARM_CATEGORY_DANGEROUS_CONTENT" in str(caught.value)
    assert len(fake.generate_calls()) == 1


async def test_an_answer_stopped_by_safety_is_a_clear_error(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested
) -> None:
    fake.queue_response(answer_blocked("SAFETY"))
    with pytest.raises(ProviderError, match=r"Gemini refused to answer \(finish reason SAFETY\)"):
        await writer.write_prompts(job)
    assert len(fake.generate_calls()) == 1


# -- checking the answer ------------------------------------------------------------------------------------------


async def test_malformed_answer_is_corrected_once(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested
) -> None:
    fake.queue_text('{"clips": [{"line": "Tired of dull')
    clips = await writer.write_prompts(job)
    assert [c.line for c in clips] == split_script(SCRIPT)

    first, second = fake.bodies()
    assert [c["role"] for c in second["contents"]] == ["user", "model", "user"]
    assert second["contents"][0] == first["contents"][0]  # the image and the instruction again
    assert texts(second["contents"][1]) == '{"clips": [{"line": "Tired of dull'
    assert "not valid JSON" in texts(second["contents"][2])


def plan(*lines: str, seconds: float = 6.0) -> dict[str, Any]:
    return {
        "clips": [{"line": line, "visual_prompt": "Ava in a studio", "duration_seconds": seconds} for line in lines]
    }


LINES = split_script(SCRIPT)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (plan(LINES[0].replace("overnight ", ""), *LINES[1:]), 'left out "overnight"'),
        (plan(*LINES[:-1], LINES[-1] + " Hurry"), 'added "Hurry"'),
        (plan(LINES[0].replace("dull", "dry"), *LINES[1:]), 'said "dry" instead of "dull"'),
        (plan(*reversed(LINES)), "not the script word for word"),
        (plan(*LINES, seconds=9), "duration_seconds"),
        (plan(*LINES, seconds=0), "duration_seconds"),
        (plan(" ".join(LINES)), "clip 1 is too long to speak in 8 seconds"),
        ({"clips": []}, "does not have the requested shape"),
        ([LINES], "does not have the requested shape"),
        ("Sure! Here is your plan.", "not valid JSON"),
        ("", "the answer was empty"),
    ],
)
async def test_two_bad_answers_fail_with_what_was_wrong(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested, answer: Any, reason: str
) -> None:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    fake.queue_text(text, text)
    with pytest.raises(ProviderError, match=r"^Gemini's answer did not match the script: ") as caught:
        await writer.write_prompts(job)
    assert reason in str(caught.value)
    assert len(fake.generate_calls()) == 2
    assert reason in texts(fake.bodies()[1]["contents"][-1])  # the model was told what was wrong


async def test_words_dropped_then_extra_word_names_the_second_problem(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested
) -> None:
    fake.queue_plan(plan(*LINES[:-1]))
    fake.queue_plan(plan(*LINES[:-1], LINES[-1] + " now"))
    with pytest.raises(ProviderError, match='added "now"'):
        await writer.write_prompts(job)
    assert 'left out "Wake up radiant. Order today' in texts(fake.bodies()[1]["contents"][-1])


async def test_case_and_punctuation_changes_keep_the_authors_text(
    fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested
) -> None:
    sloppy = [line.lower().replace(",", "").replace("?", "").replace("!", "") for line in LINES]
    fake.queue_plan(plan(*sloppy))
    clips = await writer.write_prompts(job)
    assert [c.line for c in clips] == LINES  # cut from the script itself, capitals and punctuation intact
    assert len(fake.generate_calls()) == 1


async def test_the_models_own_split_is_kept(fake: FakeGemini, writer: GeminiPromptWriter, job: JobRequested) -> None:
    words = SCRIPT.split()
    chunks = [" ".join(words[i : i + 7]) for i in range(0, len(words), 7)]
    fake.queue_plan(
        {"clips": [{"line": c, "visual_prompt": f"shot {i}", "duration_seconds": 4} for i, c in enumerate(chunks)]}
    )
    clips = await writer.write_prompts(job)
    assert [c.line for c in clips] == chunks
    assert [c.prompt for c in clips] == [f"shot {i}" for i in range(len(chunks))]
    assert all(c.est_seconds == 4 for c in clips)


# -- configuration and secrets -------------------------------------------------------------------------------------


def test_missing_api_key_names_the_variables() -> None:
    with pytest.raises(SettingsError, match=r"ADAGENT_PROMPTER=gemini needs GOOGLE_API_KEY .*GEMINI_API_KEY"):
        GeminiConfig.from_env({})


def test_vertex_without_project_names_google_cloud_project(fake: FakeGemini, tmp_path: Path) -> None:
    info = fake.account.info(fake.tokens.token_uri(fake))
    del info["project_id"]
    key = tmp_path / "sa.json"
    key.write_text(json.dumps(info))
    env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    with pytest.raises(SettingsError, match="needs GOOGLE_CLOUD_PROJECT"):
        GeminiConfig.from_env(env)


def test_vertex_takes_the_project_from_the_key_file(fake: FakeGemini, tmp_path: Path) -> None:
    env = vertex_env(fake, tmp_path)
    del env["GOOGLE_CLOUD_PROJECT"], env["GOOGLE_CLOUD_LOCATION"]
    config = GoogleClientConfig.from_env(env)
    assert (config.vertex, config.project, config.location) == (True, fake.account.project, "us-central1")


def test_vertex_with_a_missing_key_file_names_google_application_credentials(tmp_path: Path) -> None:
    env = {
        "GOOGLE_GENAI_USE_VERTEXAI": "true",
        "GOOGLE_CLOUD_PROJECT": "p",
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nope.json"),
    }
    with pytest.raises(SettingsError, match="GOOGLE_APPLICATION_CREDENTIALS names no file"):
        GeminiConfig.from_env(env)


def test_vertex_without_any_credentials_names_google_application_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_adc(**_: object) -> None:
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_adc)
    with pytest.raises(SettingsError, match="needs credentials: set GOOGLE_APPLICATION_CREDENTIALS"):
        GoogleClientConfig.from_env(
            {"GOOGLE_CLOUD_PROJECT": "p"}, vertex_required=True, needed_by="ADAGENT_RENDERER=veo"
        )


def test_vertex_required_ignores_an_api_key(fake: FakeGemini, tmp_path: Path) -> None:
    env = vertex_env(fake, tmp_path)
    del env["GOOGLE_GENAI_USE_VERTEXAI"]
    config = GoogleClientConfig.from_env(env, vertex_required=True)
    assert config.vertex and config.api_key is None and config.credentials is not None


def test_bad_timeout_names_its_variable(fake: FakeGemini) -> None:
    with pytest.raises(SettingsError, match="ADAGENT_GEMINI_TIMEOUT_SECONDS"):
        GeminiConfig.from_env({**developer_env(fake), "ADAGENT_GEMINI_TIMEOUT_SECONDS": "soon"})


async def test_the_api_key_never_reaches_logs_or_errors(
    fake: FakeGemini, storage: LocalStorage, job: JobRequested, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = fast(GeminiConfig.from_env(developer_env(fake)))
    assert fake.api_key not in repr(good) and fake.api_key not in repr(good.client)
    writer = GeminiPromptWriter(good, storage)
    fake.fail_next("POST", GENERATE, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), 1)
    await writer.write_prompts(job)
    await writer.aclose()

    wrong_key = "wrong-key-that-must-stay-secret"
    bad = fast(GeminiConfig.from_env({"GOOGLE_API_KEY": wrong_key, "GOOGLE_GEMINI_BASE_URL": fake.url}))
    writer = GeminiPromptWriter(bad, storage)
    with pytest.raises(ProviderError, match="400 INVALID_ARGUMENT: API key not valid") as caught:
        await writer.write_prompts(job)
    await writer.aclose()

    assert len(fake.generate_calls()) == 3
    for key in (fake.api_key, wrong_key):
        assert key not in str(caught.value)
        assert key not in caplog.text
        assert all(key not in repr(r.__dict__) for r in caplog.records)
