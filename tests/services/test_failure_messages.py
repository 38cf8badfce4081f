"""What a client reads when a step fails (SSE `error`, the job status API): a reason worded for it (a provider's
refusal, a script problem) as it is, and anything else (ffmpeg's stderr, a server path) only as a reference, the
whole exception in the logs under that reference for an operator."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from contracts.commands import RenderClip
from contracts.events import ClipPlan, ClipRendered, ClipsMerged, JobFailed, JobRequested, event_id
from services.merger.handler import handle_clip_rendered
from services.renderer.port import RenderedClip
from services.runtime.context import Runtime, open_runtime
from services.runtime.errors import ProviderError, ScriptError, TransientError, UserFacingError
from services.runtime.failures import public_reason
from services.runtime.ffmpeg import FfmpegError, run_ffmpeg
from services.runtime.logging import configure_logging
from services.runtime.settings import load_settings
from services.voice.handler import handle_clips_merged
from tests.conftest import EXAMPLE_AVATAR, start_server
from tests.e2e.flow import StreamResult, post_stream
from tests.gateway.jobs_client import client_for
from tests.logs import logging_restored

LINE = "Wake up radiant, every single morning."  # one clip: the failing clip is clip 1/1
INTERNAL = re.compile(r"internal error \(ref (?P<ref>[0-9a-f]{12})\)$")
REFUSAL = "Veo's safety filter refused clip 1: Person generation is not allowed for this project."

JsonLogs = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_logs() -> Iterator[JsonLogs]:
    """The logs as an operator gets them: configure_logging's processors and JSON lines, written to a buffer of this
    test's own (a stream captured by pytest may be closed by the time the server's tasks log). Logging is global, so
    it is put back as it was afterwards."""
    buffer = io.StringIO()

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]

    with logging_restored():
        configure_logging("INFO", json=True)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buffer))
        yield read


class FfmpegFailsRenderer:
    """Runs ffmpeg for real on a file missing from the clip's work folder: an FfmpegError whose stderr names the
    server path, as a broken encode does."""

    def __init__(self) -> None:
        self.stderr = ""

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        try:
            await run_ffmpeg("-i", str(out.parent / "scene.mp4"), "-f", "null", "-")
        except FfmpegError as exc:
            self.stderr = "\n".join(exc.stderr_tail)
            raise
        raise AssertionError("ffmpeg read a file that does not exist")


class RefusingRenderer:
    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        raise ProviderError(REFUSAL)


async def _stream(tmp_path: Path, avatar: str, providers: dict[str, Any]) -> tuple[StreamResult, str, Path]:
    """One job through the embedded stack: its stream, its error as the status API tells it, and the work folder."""
    async for server in start_server(tmp_path / "home", providers):
        result = await post_stream(server.url, {"script": LINE, "character_image": avatar}, server.token)
        assert result.names[-1] == "error", result.raw
        job_id = result.data("error")[0]["job_id"]
        async with client_for(server.url, server.token) as client:
            status = (await client.get(f"/api/ad-agent/jobs/{job_id}")).json()
        assert status["status"] == "failed"
        return result, status["error"], server.settings.work_dir
    raise AssertionError("the server did not start")


async def test_an_ffmpeg_failure_reaches_the_client_as_a_reference_and_the_logs_in_full(
    tmp_path: Path, avatar_data_uri: str, json_logs: JsonLogs
) -> None:
    renderer = FfmpegFailsRenderer()
    result, status_error, work_dir = await _stream(tmp_path, avatar_data_uri, {"renderer": renderer})
    error = result.data("error")[0]
    message = error["message"]
    assert error["step"] == 2
    assert message.startswith("Failed to generate clip 1/1: ")  # the step and the clip, in the seed's words
    found = INTERNAL.search(message)
    assert found, message
    assert status_error == message  # the job status API tells the same, and no more
    assert "scene.mp4" in renderer.stderr and str(work_dir) in renderer.stderr  # the stderr did name the path...
    for leak in (str(tmp_path), "scene.mp4", "ffmpeg", "No such file", *renderer.stderr.splitlines()):
        assert leak not in result.raw  # ...and none of it is anywhere in the stream
        assert leak not in status_error

    ref = found["ref"]
    [record] = [r for r in json_logs() if r.get("ref") == ref]
    assert record["event"] == "renderer.failed" and record["level"] == "error"
    assert record["job_id"] == error["job_id"] and record["clip"] == 1
    assert "FfmpegError" in record["exception"]
    for line in renderer.stderr.splitlines():
        assert line in record["exception"]  # what the operator needs: the whole stderr tail, path and all


async def test_a_provider_refusal_reaches_the_client_word_for_word(tmp_path: Path, avatar_data_uri: str) -> None:
    result, status_error, _ = await _stream(tmp_path, avatar_data_uri, {"renderer": RefusingRenderer()})
    assert result.data("error")[0]["message"] == f"Failed to generate clip 1/1: {REFUSAL}"
    assert status_error == f"Failed to generate clip 1/1: {REFUSAL}"


class FailingWriter:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def write_prompts(self, job: JobRequested) -> list[ClipPlan]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ScriptError("the script has no words to speak"), "the script has no words to speak"),
        (FileNotFoundError(2, "No such file or directory", "/srv/adagent/work/prompter/avatar.jpg"), INTERNAL),
        (ValueError("unexpected token at /srv/adagent/lib/plan.py:12"), INTERNAL),  # a ValueError is not a reason
    ],
)
async def test_a_prompter_failure_shows_a_script_problem_and_hides_the_rest(
    tmp_path: Path, avatar_data_uri: str, error: Exception, expected: str | re.Pattern[str]
) -> None:
    result, _, _ = await _stream(tmp_path, avatar_data_uri, {"writer": FailingWriter(error)})
    message = result.data("error")[0]["message"]
    assert message.startswith("Failed to generate video prompts: ")
    reason = message.removeprefix("Failed to generate video prompts: ")
    if isinstance(expected, str):
        assert reason == expected
    else:
        assert expected.fullmatch(reason), message
        assert "/srv" not in result.raw


# -- the other steps and the bus's give-up, one handler at a time ------------------------------------------------------
JOB = "ad_failures"


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(load_settings(env={}, home=tmp_path / "home"))
    await runtime.recorder.record(
        JobRequested(
            event_id=event_id(JOB, "requested"),
            job_id=JOB,
            script=LINE,
            avatar_ref=f"file://{EXAMPLE_AVATAR}",
            character_name="Ava",
            voice_id=None,
            aspect_ratio="16:9",
            resolution="720p",
        )
    )
    try:
        yield runtime
    finally:
        await runtime.close()


async def _failure(rt: Runtime) -> JobFailed:
    failed = (await rt.history(JOB)).first(JobFailed)
    assert failed is not None
    return failed


async def test_a_merge_of_a_broken_clip_names_the_step_not_the_file(rt: Runtime, json_logs: JsonLogs) -> None:
    clip_ref = await rt.storage.put_bytes(f"jobs/{JOB}/clips/clip_001.mp4", b"not a video", "video/mp4")
    clip = ClipRendered(
        event_id=event_id(JOB, "clip-rendered", 1), job_id=JOB, index=1, total_clips=1, clip_ref=clip_ref, duration_s=1
    )
    await handle_clip_rendered(await rt.store.append(clip), rt=rt)
    failed = await _failure(rt)
    assert failed.step == 3
    found = INTERNAL.search(failed.message)
    assert found and failed.message.startswith("Failed to merge video clips: "), failed.message
    [record] = [r for r in json_logs() if r.get("ref") == found["ref"]]
    assert record["event"] == "merger.failed" and "clip_001.mp4" in record["exception"]


class FailingEnhancer:
    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def enhance(self, merged: Path, out: Path, voice_id: str | None) -> float | None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ProviderError("ElevenLabs refused voice George: voice_not_found"), "ElevenLabs refused voice George: "),
        (OSError(13, "Permission denied", "/srv/adagent/work/voice/ad_failures/voiced.mp4"), "internal error"),
        # A full disk is no secret and not the client's doing: it is told so, still without the path.
        (
            OSError(28, "No space left on device", "/srv/adagent/work/voice/ad_failures/voiced.mp4"),
            "the server ran out of disk space; try again later",
        ),
    ],
)
async def test_a_voice_failure_keeps_a_refusal_and_hides_an_os_error(
    rt: Runtime, error: Exception, reason: str
) -> None:
    merged_ref = await rt.storage.put_bytes(f"jobs/{JOB}/merged.mp4", b"merged", "video/mp4")
    merged = ClipsMerged(event_id=event_id(JOB, "clips-merged"), job_id=JOB, merged_ref=merged_ref, duration_s=1)
    await handle_clips_merged(await rt.store.append(merged), rt=rt, enhancer=FailingEnhancer(error))
    failed = await _failure(rt)
    assert failed.step == 4
    assert failed.message.startswith(f"Failed to enhance the voice: {reason}"), failed.message
    assert "/srv" not in failed.message and "Permission" not in failed.message and "No space" not in failed.message


def _render_command() -> RenderClip:
    return RenderClip(
        command_id=event_id(JOB, "render", 1),
        job_id=JOB,
        clip=ClipPlan(index=1, line=LINE, prompt="p", est_seconds=2),
        total_clips=1,
        avatar_ref=f"file://{EXAMPLE_AVATAR}",
        character_name="Ava",
        voice_id=None,
        aspect_ratio="16:9",
        resolution="720p",
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TransientError("the provider is busy"), "the provider is busy"),  # worded for the client: kept
        (OSError("database disk image is malformed: /srv/adagent/home/events.sqlite3"), INTERNAL.pattern),
    ],
)
async def test_a_message_given_up_on_fails_its_job_with_a_safe_reason(
    rt: Runtime, json_logs: JsonLogs, error: Exception, reason: str
) -> None:
    rt.steps["renderer"] = (2, "Generating a clip")
    await rt.give_up("renderer", _render_command(), error, 5)
    failed = await _failure(rt)
    assert failed.step == 2
    assert re.fullmatch(f"Generating a clip failed after 5 attempts: {reason}", failed.message), failed.message
    found = INTERNAL.search(failed.message)
    if found:
        [record] = [r for r in json_logs() if r.get("ref") == found["ref"]]
        assert record["event"] == "job.given_up" and "events.sqlite3" in record["exception"]


def test_the_rule_for_what_a_client_reads(json_logs: JsonLogs) -> None:
    assert public_reason(ProviderError("Gemini rejected the request: 400 INVALID_ARGUMENT"), "t") == (
        "Gemini rejected the request: 400 INVALID_ARGUMENT"
    )
    # A reason meant for the client still loses what the log scrubber hides.
    leaky = ProviderError("Veo could not fetch https://h/clip.mp4?expires=1&signature=abc123")
    assert public_reason(leaky, "t") == "Veo could not fetch https://h/clip.mp4?expires=1&signature=***"
    # A user-facing class with nothing to say gets a reference rather than an empty reason.
    assert INTERNAL.fullmatch(public_reason(UserFacingError(), "t"))
    internal = public_reason(RuntimeError("boom at /srv/x"), "t", job_id="ad_1")
    found = INTERNAL.fullmatch(internal)
    assert found
    [record] = [r for r in json_logs() if r.get("ref") == found["ref"]]
    assert record["job_id"] == "ad_1" and "boom at /srv/x" in record["exception"]
