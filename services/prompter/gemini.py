"""Step 1 with Gemini: the avatar image and the script in, a clip plan out as structured JSON (a response schema made
from contracts.prompt_plan), checked against the script before anything downstream pays for a clip.

A bad answer (not the plan's JSON, a word added or lost, a line too long for one clip) is sent back to the model once,
saying what was wrong; a second bad answer fails the job. 429 and 5xx are retried here with jittered backoff, then
raised as TransientError for the bus to redeliver; any other 4xx or a safety block is a permanent error that carries
Google's own status and reason. A 429's RetryInfo (`retryDelay`) is the server's wait: it is honoured whole while the
step's deadline (ADAGENT_GEMINI_DEADLINE_SECONDS) leaves room for it, and when it does not the job fails saying how
long Gemini asked to wait, since asking sooner only meets another 429.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from google.genai import Client, errors, types

from contracts.events import ClipPlan, JobRequested
from contracts.prompt_plan import (
    MAX_CLIP_SECONDS,
    PlanMismatch,
    decode_plan,
    response_json_schema,
    script_lines,
    words,
)
from services.prompter.script_split import speech_seconds
from services.runtime.errors import ProviderError, ScriptError, TransientError
from services.runtime.google_client import (
    CALL_ERRORS,
    GoogleClientConfig,
    backoff_delay,
    credential_failure,
    describe,
    is_retryable,
    make_client,
    server_retry_delay,
)
from services.runtime.image_types import image_mime_type
from services.runtime.settings import env_float
from services.runtime.storage.port import ObjectStorage

log = structlog.get_logger(__name__)

# The Flash model the installed SDK's own generate_content tests run against both back ends (GEMINI_FLASH_LATEST in
# google/genai/tests/models/test_generate_content.py): generally available on the Developer API and on Vertex AI,
# multimodal, and it supports responseJsonSchema. Newer Flash models (e.g. gemini-3.8-flash, which the SDK's
# docstrings use) are one ADAGENT_GEMINI_MODEL away.
DEFAULT_MODEL = "gemini-2.5-flash"
ANSWERS = 2  # the first answer and one corrected retry
_ECHO_LIMIT = 20_000  # how much of a rejected answer is sent back with the correction
_REFUSALS = {
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "MODEL_ARMOR",
    "LANGUAGE",
}


@dataclass(frozen=True)
class GeminiConfig:
    client: GoogleClientConfig
    model: str = DEFAULT_MODEL
    temperature: float = 0.4  # faithful splitting matters more than variety
    timeout_seconds: float = 120.0
    max_attempts: int = 4  # per request, for 429 / 5xx / network failures
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 30.0  # of our own backoff; a wait the server asks for is honoured whole
    deadline_seconds: float = 300.0  # for the whole step: every attempt and every wait between them

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GeminiConfig:
        return cls(
            client=GoogleClientConfig.from_env(env, vertex_required=False, needed_by="ADAGENT_PROMPTER=gemini"),
            model=(env.get("ADAGENT_GEMINI_MODEL") or DEFAULT_MODEL).strip(),
            timeout_seconds=env_float(env, "ADAGENT_GEMINI_TIMEOUT_SECONDS", 120.0),
            deadline_seconds=env_float(env, "ADAGENT_GEMINI_DEADLINE_SECONDS", 300.0),
        )


class GeminiPromptWriter:
    def __init__(
        self,
        config: GeminiConfig,
        storage: ObjectStorage,
        client: Client | None = None,
        work_dir: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._storage = storage
        self._client = client or make_client(config.client, timeout_seconds=config.timeout_seconds)
        self._work_dir = work_dir  # where the avatar is downloaded to (a temporary folder inside it)
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
        self._generation = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=response_json_schema(),
            temperature=config.temperature,
            candidate_count=1,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),  # no tools to call
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    async def write_prompts(self, job: JobRequested) -> list[ClipPlan]:
        if not words(job.script):
            raise ScriptError("the script has no words to speak")
        image, mime_type = await self._avatar(job.avatar_ref)
        ask = types.Content(
            role="user",
            parts=[types.Part.from_bytes(data=image, mime_type=mime_type), types.Part.from_text(text=instruction(job))],
        )
        contents = [ask]
        problem = ""
        deadline = self._clock() + self._config.deadline_seconds
        for answer_number in range(1, ANSWERS + 1):
            response = await self._generate(contents, deadline)
            text = ""
            try:
                text = _answer_text(response)
                clips = _clips(text, job.script)
            except PlanMismatch as exc:
                problem = str(exc)
                log.warning("gemini.bad_answer", job_id=job.job_id, answer=answer_number, problem=problem)
                contents = [
                    ask,
                    types.Content(role="model", parts=[types.Part.from_text(text=text[:_ECHO_LIMIT] or "(no text)")]),
                    types.Content(role="user", parts=[types.Part.from_text(text=correction(problem))]),
                ]
                continue
            usage = response.usage_metadata
            log.info(
                "gemini.prompts",
                job_id=job.job_id,
                model=self._config.model,
                clips=len(clips),
                answers=answer_number,
                usage=usage.total_token_count if usage else None,  # not "tokens": the log scrubber hides that name
            )
            return clips
        raise ProviderError(f"Gemini's answer did not match the script: {problem}")

    async def _avatar(self, ref: str) -> tuple[bytes, str]:
        with tempfile.TemporaryDirectory(prefix="gemini-avatar-", dir=self._work_dir) as tmp:
            path = await self._storage.fetch(ref, Path(tmp))
            data = await asyncio.to_thread(path.read_bytes)
        mime_type = image_mime_type(data)
        if mime_type is None:
            raise ProviderError("the avatar is not a PNG, JPEG or WebP image, the formats Gemini reads")
        return data, mime_type

    async def _generate(self, contents: list[types.Content], deadline: float) -> types.GenerateContentResponse:
        cfg = self._config
        for attempt in range(1, cfg.max_attempts + 1):
            try:
                return await self._client.aio.models.generate_content(
                    model=cfg.model, contents=contents, config=self._generation
                )
            except CALL_ERRORS as exc:
                refused = credential_failure(exc, "Gemini", cfg.client.credentials_source)
                if refused is not None:
                    raise refused from exc  # the credentials: no retry gets past them
                reason = describe(exc, cfg.client.secrets)
                if not is_retryable(exc):
                    if isinstance(exc, errors.APIError):
                        raise ProviderError(f"Gemini rejected the request: {reason}") from exc
                    raise ProviderError(
                        f"Gemini could not be called with the configured credentials: {reason}"
                    ) from exc
                if attempt == cfg.max_attempts:
                    raise TransientError(f"Gemini did not answer after {attempt} attempts: {reason}") from exc
                delay = backoff_delay(attempt, base=cfg.backoff_seconds, cap=cfg.max_backoff_seconds, exc=exc)
                left = deadline - self._clock()
                if delay > left:
                    asked = server_retry_delay(exc)
                    if asked is not None and asked >= delay:
                        raise ProviderError(
                            f"Gemini asked to wait {asked:g} s before trying again ({reason}), longer than the "
                            f"{max(left, 0):.0f} s left of the {cfg.deadline_seconds:g} s the prompts may take "
                            "(ADAGENT_GEMINI_DEADLINE_SECONDS)"
                        ) from exc
                    raise TransientError(
                        f"Gemini did not answer within {cfg.deadline_seconds:g} s ({attempt} attempts): {reason}"
                    ) from exc
                log.warning("gemini.retry", attempt=attempt, reason=reason, delay=round(delay, 2))
                await self._sleep(delay)
        raise AssertionError("unreachable: max_attempts must be at least 1")


def _answer_text(response: types.GenerateContentResponse) -> str:
    """The model's text, or ProviderError for a refusal, or PlanMismatch for an answer worth asking again for."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = _name(feedback.block_reason)
        detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise ProviderError(f"Gemini blocked the request ({reason}{detail}){_categories(feedback.safety_ratings)}")
    if not response.candidates:
        raise PlanMismatch("the answer had no candidates")
    candidate = response.candidates[0]
    finish = _name(candidate.finish_reason) if candidate.finish_reason is not None else ""
    if finish in _REFUSALS:
        detail = f": {candidate.finish_message}" if candidate.finish_message else ""
        raise ProviderError(
            f"Gemini refused to answer (finish reason {finish}{detail}){_categories(candidate.safety_ratings)}"
        )
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    if finish == "MAX_TOKENS":
        raise PlanMismatch("the answer was cut off at the output token limit; keep the visual prompts shorter")
    if finish not in ("", "STOP", "FINISH_REASON_UNSPECIFIED"):
        raise PlanMismatch(f"the answer ended early (finish reason {finish})")
    return text


def _clips(text: str, script: str) -> list[ClipPlan]:
    plan = decode_plan(text)
    lines = script_lines(plan, script)
    for i, line in enumerate(lines, start=1):
        seconds = speech_seconds(line)
        if seconds > MAX_CLIP_SECONDS:
            raise PlanMismatch(
                f"clip {i} is too long to speak in {MAX_CLIP_SECONDS:g} seconds ({len(line.split())} words, about "
                f"{seconds:.1f} s): split it at a sentence or clause boundary"
            )
    return [
        ClipPlan(index=i, line=line, prompt=clip.visual_prompt.strip(), est_seconds=round(clip.duration_seconds, 2))
        for i, (line, clip) in enumerate(zip(lines, plan.clips, strict=True), start=1)
    ]


def _name(value: object) -> str:
    return str(getattr(value, "value", value))


def _categories(ratings: list[types.SafetyRating] | None) -> str:
    flagged = sorted({_name(r.category) for r in ratings or [] if r.category is not None and r.blocked})
    return f" [{', '.join(flagged)}]" if flagged else ""


def instruction(job: JobRequested) -> str:
    name = job.character_name.strip() or "the character"
    orientation = {"9:16": "vertical 9:16", "16:9": "horizontal 16:9", "1:1": "square 1:1"}.get(
        job.aspect_ratio, job.aspect_ratio
    )
    return f"""You are directing a short video ad. The image is the avatar: {name}, the one character who appears in
every clip, speaking straight to camera. Each clip is generated by an image-to-video model that starts from this image,
framed {orientation}.

Split the script below into clips, in order. Rules:
1. "line" is the next consecutive part of the script, copied exactly: same words, same order, same spelling and
   punctuation. All lines together are the whole script: no word left out, repeated, changed or added, and no stage
   directions or speaker names.
2. Each line must be spoken in at most {MAX_CLIP_SECONDS:g} seconds: at most 16 words. Split at sentence ends, or at
   commas and other clause breaks for long sentences; never inside a word.
3. "duration_seconds" is how long the clip runs for its line (speech at about 2.5 words per second plus a short
   pause), at most {MAX_CLIP_SECONDS:g}.
4. "visual_prompt" describes, for the video model: {name} exactly as seen in the image (apparent age, face, hair,
   clothing, distinctive details), the setting, the camera (shot size, angle, movement), and the emotion and delivery
   that suit this line, with lips moving in sync with the speech. Keep the character and the setting consistent from
   clip to clip. Do not quote the line itself: it is given to the video model separately.

<script>
{job.script.strip()}
</script>"""


def correction(problem: str) -> str:
    return (
        f"That answer was rejected: {problem}. Answer again with the complete plan for the whole script, following "
        "every rule: the lines together must be the script word for word, and each line must be spoken in at most "
        f"{MAX_CLIP_SECONDS:g} seconds."
    )
