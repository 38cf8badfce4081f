"""Clips from Veo on Vertex AI: image-to-video with the avatar as the first frame and the line spoken in the clip.

google-genai 3.x runs `generate_videos` only on a Vertex client (an API-key client raises ValueError), so this
adapter needs a project, a location and Google credentials. Every generation is paid for, so the operation's name is
recorded (OperationLog) before the first poll; a renderer that dies mid-clip leaves the RenderClip unacknowledged,
and whichever renderer gets it next finds the name and polls that operation instead of starting another.

Veo makes 16:9 or 9:16 clips of 4, 6 or 8 s at 720p or 1080p, 24 fps. The product's sizes are exact (1:1 too), so
each clip is scaled and centre-cropped to the job's frame and its audio resampled to 48 kHz; the video stream is
re-encoded once here so every clip of a job shares one codec setup and the merger can copy them. An avatar whose
shape differs from the clip's is fitted by Veo itself (`resizeMode`): padded by default, which would put bars beside
a square or portrait face, so the request says `crop` unless the padded picture still fills the ad's frame after
that centre crop (a square avatar in a square ad: padding then loses nothing the frame shows).

Each clip mostly waits on Veo, so a renderer takes as many clips at once as the quota lets start (`clips_at_once`),
while the parts that use this machine's cores (reading the clip back, finding its speech, the encode) go through
`local_slots` at a time.

Veo gives no word timings, and its clip is as long as asked (4, 6 or 8 s) however short the line. So, before that
one encode, the speech is found in the clip's sound (`speech_span`) and the line's words are spread over it
(`word_estimate`); the same encode then cuts the dead air after the last word (TRIM_TAIL_S after it) and burns in
the captions as the local renderer does, and the words go back with the clip for the ad's WebVTT. The start is never
cut: the first frame is the avatar. A clip with no speech (generate_audio off) is neither cut nor captioned."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Final

import structlog
from google.auth import exceptions as google_auth_exceptions
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from contracts.commands import RenderClip
from contracts.formats import frame_size
from services.renderer.captions import ass_filter, write_ass
from services.renderer.operation_log import OperationLog
from services.renderer.port import RenderedClip
from services.renderer.rate_limit import RateLimit, RequestRate
from services.renderer.speech_span import SpeechSpan, speech_in_file
from services.renderer.word_estimate import estimate_words
from services.runtime.credential_errors import GOOGLE_KEY_FILE, google_refresh_failure
from services.runtime.errors import ProviderError, TransientError
from services.runtime.ffmpeg import run_ffmpeg
from services.runtime.google_client import credential_failure, describe, is_retryable
from services.runtime.image_types import image_mime_type
from services.runtime.media_probe import MediaInfo, probe
from services.runtime.settings import SettingsError, env_float, env_int

log = structlog.get_logger(__name__)

PROVIDER: Final = "veo"
CLIP_SECONDS: Final = (4, 6, 8)  # the lengths Veo 3 accepts
FPS: Final = 24
AUDIO_RATE: Final = 48000
# Kept after the last voiced moment: the end of a word fades under the speech threshold (a soft "s", a falling
# vowel) and a listener expects a breath before the next line; much more and the dead air is back.
TRIM_TAIL_S: Final = 0.4
MIN_CLIP_S: Final = 1.0  # a trimmed clip is never shorter: a one-word line still gets a moment on screen
# Operation errors (google.rpc.Code) the provider may not repeat: the clip is generated again, once.
_RETRYABLE_OPERATION_CODES: Final = {
    4,
    8,
    10,
    13,
    14,
}  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE
_MAX_OPERATIONS_PER_CLIP: Final = 2
PERSON_GENERATION: Final = ("allow_adult", "dont_allow")
# A renderer process holds at most this many clips at once however large the quota: past it, run more renderers.
MAX_CLIPS_AT_ONCE: Final = 256
_DEFAULT_NEGATIVE: Final = (
    "subtitles, captions, on-screen text, watermark, logo, extra people, distorted face, warped mouth, background music"
)


@dataclass(frozen=True)
class VeoConfig:
    model: str = "veo-3.1-generate-001"
    max_clip_seconds: int = 8
    person_generation: str = "allow_adult"
    negative_prompt: str = _DEFAULT_NEGATIVE
    generate_audio: bool = True
    square_source: str = "16:9"  # Veo has no 1:1: a square ad is cropped from this
    resolution: str | None = None  # None: 1080p for 1080p jobs, else 720p
    output_gcs_uri: str | None = None  # when set, Veo writes clips there instead of answering with the bytes
    requests_per_minute: float = 10.0
    clips_at_once: int | None = None  # None: as many as the quota lets start in a minute
    generate_retries: int = 5  # 429 / 5xx on submit, each after a jittered backoff
    poll_first_seconds: float = 10.0
    poll_max_seconds: float = 30.0
    poll_deadline_seconds: float = 600.0
    seed: int | None = None
    captions: bool = True  # burned into the picture; the words still go to the ad's WebVTT without them
    trim_silence: bool = True  # cut the dead air after the line

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VeoConfig:
        max_seconds = env_int(env, "ADAGENT_VEO_MAX_CLIP_SECONDS", 8)
        if max_seconds not in CLIP_SECONDS:
            raise SettingsError(f"ADAGENT_VEO_MAX_CLIP_SECONDS must be one of 4, 6 or 8, got {max_seconds}")
        person = env.get("ADAGENT_VEO_PERSON_GENERATION") or "allow_adult"
        # Every clip starts from the avatar (image-to-video), where Veo takes only these two (PROVIDERS.md):
        # `allow_all` is for text-to-video, and would fail every job at step 2 instead of here, at start.
        if person not in PERSON_GENERATION:
            raise SettingsError(
                f"ADAGENT_VEO_PERSON_GENERATION must be {' or '.join(PERSON_GENERATION)}, got {person!r}"
            )
        square = env.get("ADAGENT_VEO_SQUARE_SOURCE") or "16:9"
        if square not in ("16:9", "9:16"):
            raise SettingsError("ADAGENT_VEO_SQUARE_SOURCE must be 16:9 or 9:16")
        resolution = env.get("ADAGENT_VEO_RESOLUTION") or None
        if resolution not in (None, "720p", "1080p"):
            raise SettingsError("ADAGENT_VEO_RESOLUTION must be 720p or 1080p")
        gcs = env.get("ADAGENT_VEO_OUTPUT_GCS_URI") or None
        if gcs is not None and not gcs.startswith("gs://"):
            raise SettingsError(f"ADAGENT_VEO_OUTPUT_GCS_URI must be a gs:// URI, got {gcs!r}")
        return cls(
            model=env.get("ADAGENT_VEO_MODEL") or cls.model,
            max_clip_seconds=max_seconds,
            person_generation=person,
            negative_prompt=env.get("ADAGENT_VEO_NEGATIVE_PROMPT", _DEFAULT_NEGATIVE),
            generate_audio=_flag(env, "ADAGENT_VEO_GENERATE_AUDIO"),
            square_source=square,
            resolution=resolution,
            output_gcs_uri=gcs,
            requests_per_minute=env_float(env, "ADAGENT_VEO_REQUESTS_PER_MINUTE", 10.0),
            clips_at_once=(
                env_int(env, "ADAGENT_VEO_CONCURRENCY", 1, minimum=1)
                if env.get("ADAGENT_VEO_CONCURRENCY", "").strip()
                else None
            ),
            poll_first_seconds=env_float(env, "ADAGENT_VEO_POLL_SECONDS", 10.0),
            poll_max_seconds=env_float(env, "ADAGENT_VEO_POLL_MAX_SECONDS", 30.0),
            poll_deadline_seconds=env_float(env, "ADAGENT_VEO_POLL_DEADLINE_SECONDS", 600.0),
            seed=env_int(env, "ADAGENT_VEO_SEED", -1, minimum=0) if env.get("ADAGENT_VEO_SEED", "").strip() else None,
            captions=_flag(env, "ADAGENT_VEO_CAPTIONS"),
            trim_silence=_flag(env, "ADAGENT_VEO_TRIM_SILENCE"),
        )

    @property
    def concurrency(self) -> int:
        """Clips one renderer process works on at once: all the quota lets start in a minute (the rest wait on the
        limit, not in the queue), unless ADAGENT_VEO_CONCURRENCY says otherwise."""
        if self.clips_at_once is not None:
            return self.clips_at_once
        return max(1, min(MAX_CLIPS_AT_ONCE, math.ceil(self.requests_per_minute)))


def _flag(env: Mapping[str, str], var: str) -> bool:
    """On unless set to 0, false or no."""
    return (env.get(var) or "true").strip().lower() not in ("0", "false", "no")


Fetch = Callable[[str, Path], Awaitable[Path]]  # a gs:// URI → the object's bytes in a local file in that folder


class VeoClipRenderer:
    def __init__(
        self,
        config: VeoConfig,
        client: Any,  # google.genai.Client in Vertex mode
        operations: OperationLog,
        fetch: Fetch,
        *,
        rate_limit: RequestRate | None = None,
        local_slots: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        credentials_source: str = GOOGLE_KEY_FILE,  # what to check when Google refuses the credentials
    ) -> None:
        if not getattr(client, "vertexai", False):
            raise SettingsError(
                "Veo needs a Vertex AI client (google-genai runs generate_videos only in Vertex mode): "
                "set GOOGLE_CLOUD_PROJECT and Google credentials"
            )
        self._config = config
        self._client = client
        self._operations = operations
        self._fetch = fetch
        self._limit = rate_limit or RateLimit(config.requests_per_minute, name=f"veo:{config.model}")
        self._local = asyncio.Semaphore(local_slots)  # the CPU-bound part of each clip, bounded by cores
        self._sleep = sleep
        self._credentials_source = credentials_source

    @property
    def clips_at_once(self) -> int:
        """How many RenderClip commands the renderer service should take at once with this provider."""
        return self._config.concurrency

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        job_id, index = command.job_id, command.clip.index
        previous = await self._operations.latest(job_id, index)
        name = previous.operation_name if previous else None
        if name is not None:
            log.info("veo.resume", job_id=job_id, clip=index, operation=name)
        for attempt in range(_MAX_OPERATIONS_PER_CLIP):
            if name is None:
                name = await self._submit(command, avatar)
                await self._operations.submitted(job_id, index, PROVIDER, name)
            try:
                video = await self._wait(name, command)
                break
            except _OperationFailed as failed:
                if not failed.retryable or attempt == _MAX_OPERATIONS_PER_CLIP - 1:
                    raise ProviderError(f"Veo failed clip {index}: {failed}") from None
                log.warning("veo.operation_failed", job_id=job_id, clip=index, reason=str(failed))
                name = None  # generate it again, as a new recorded operation
        async with self._local:
            return await self._finish(video, command, out)

    async def _finish(self, video: types.Video, command: RenderClip, out: Path) -> RenderedClip:
        """Veo's clip read back, its speech found, cut, captioned and fitted to the job's frame: this machine's work."""
        job_id, index = command.job_id, command.clip.index
        source = out.with_name(f"{out.stem}.veo.mp4")
        if video.video_bytes:
            await asyncio.to_thread(source.write_bytes, video.video_bytes)
        else:
            assert video.uri is not None
            fetched = await self._fetch(video.uri, out.parent)  # a download of the gs:// clip into the work folder
            fetched.replace(source)
        info = probe(source)
        speech = await asyncio.to_thread(speech_in_file, source) if info.audio_codec is not None else None
        words = estimate_words(command.clip.line, speech) if speech is not None else []
        cut = _cut_at(speech, info) if self._config.trim_silence else None
        with TemporaryDirectory(prefix="adagent-veo-") as tmp:
            captions = None
            if self._config.captions and words:
                ass = Path(tmp) / "captions.ass"
                await asyncio.to_thread(write_ass, words, *frame_size(command.aspect_ratio, command.resolution), ass)
                captions = ass_filter(ass)
            await self._fit(source, out, command, info, cut=cut, captions=captions)
        fitted = probe(out)
        # The video's length, not the container's: the merger places each clip where the videos before it end.
        duration = fitted.video_duration_s or fitted.duration_s or 0.0
        cut_s = None if cut is None else round(cut, 3)
        log.info("veo.fitted", job_id=job_id, clip=index, source_s=info.duration_s, cut_s=cut_s, words=len(words))
        return RenderedClip(duration, words)

    # -- submit --------------------------------------------------------------------------------------------------
    def request(
        self, command: RenderClip, avatar: Path
    ) -> tuple[types.GenerateVideosSource, types.GenerateVideosConfig]:
        """What is sent for one clip (public so tests and operators can see the exact request)."""
        clip = command.clip
        if command.avatar_ref.startswith("gs://"):
            image = types.Image(gcs_uri=command.avatar_ref, mime_type=_mime_type(avatar))
        else:
            image = types.Image(image_bytes=avatar.read_bytes(), mime_type=_mime_type(avatar))
        speaker = command.character_name or "The person"
        # Veo 3 speaks dialogue written after a colon in quotes; the picture direction comes from the prompter.
        prompt = (
            f"{clip.prompt.strip()}\n"
            f'{speaker} looks into the camera and says, clearly and naturally: "{clip.line.strip()}"\n'
            "Keep the person's face and appearance exactly as in the first frame. No text on screen."
        )
        aspect = command.aspect_ratio if command.aspect_ratio in ("16:9", "9:16") else self._config.square_source
        frame = frame_size(command.aspect_ratio, command.resolution)
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=self._clip_seconds(clip.est_seconds),
            aspect_ratio=aspect,
            resolution=self._config.resolution or ("1080p" if command.resolution == "1080p" else "720p"),
            person_generation=self._config.person_generation,
            negative_prompt=self._config.negative_prompt or None,
            generate_audio=self._config.generate_audio,
            output_gcs_uri=self._output_uri(command),
            seed=self._config.seed,
            resize_mode=resize_mode(image_size(avatar), aspect, frame),
        )
        return types.GenerateVideosSource(prompt=prompt, image=image), config

    def _clip_seconds(self, spoken: float) -> int:
        # The shortest length the line fits in, with half a second to spare for a breath before and after.
        fitting = [s for s in CLIP_SECONDS if s <= self._config.max_clip_seconds and s >= spoken + 0.5]
        return min(fitting) if fitting else self._config.max_clip_seconds

    def _output_uri(self, command: RenderClip) -> str | None:
        base = self._config.output_gcs_uri
        if base is None:
            return None
        return f"{base.rstrip('/')}/{command.job_id}/clip_{command.clip.index:03d}/"

    async def _submit(self, command: RenderClip, avatar: Path) -> str:
        source, config = self.request(command, avatar)
        for attempt in range(self._config.generate_retries + 1):
            await self._limit.acquire()
            try:
                operation = await self._client.aio.models.generate_videos(
                    model=self._config.model, source=source, config=config
                )
            except google_auth_exceptions.RefreshError as exc:
                raise google_refresh_failure(exc, self._credentials_source) from exc
            except genai_errors.APIError as exc:
                if not is_retryable(exc) or attempt == self._config.generate_retries:
                    raise self._refusal(exc, command.clip.index) from None
                delay = _backoff(attempt)
                if exc.code == 429:
                    await self._limit.back_off(delay)  # the quota is shared: every clip waits
                log.warning("veo.submit_retry", clip=command.clip.index, status=exc.code, delay=round(delay, 1))
                await self._sleep(delay)
                continue
            if not operation.name:
                raise ProviderError("Veo accepted the request but returned no operation name")
            log.info("veo.submitted", job_id=command.job_id, clip=command.clip.index, operation=operation.name)
            return str(operation.name)
        raise AssertionError("unreachable")

    def _refusal(self, exc: genai_errors.APIError, index: int) -> Exception:
        """A 401 is about the credentials, worded as for every adapter (credential_errors); the rest, the clip's."""
        return credential_failure(exc, "Veo", self._credentials_source) or _explain(exc, index)

    # -- poll ----------------------------------------------------------------------------------------------------
    async def _wait(self, name: str, command: RenderClip) -> types.Video:
        operation = types.GenerateVideosOperation.model_validate({"name": name})
        delay = self._config.poll_first_seconds
        waited = 0.0
        errors_in_a_row = 0
        while True:
            try:
                operation = await self._client.aio.operations.get(operation)
                errors_in_a_row = 0
            except google_auth_exceptions.RefreshError as exc:
                raise google_refresh_failure(exc, self._credentials_source) from exc
            except genai_errors.APIError as exc:
                if not is_retryable(exc):
                    raise self._refusal(exc, command.clip.index) from None
                errors_in_a_row += 1
                log.warning("veo.poll_error", operation=name, status=exc.code, in_a_row=errors_in_a_row)
            if operation.done:
                return self._result(operation, command)
            if waited >= self._config.poll_deadline_seconds:
                # Left running at the provider: the redelivered command polls this same operation again.
                raise TransientError(
                    f"Veo is still generating clip {command.clip.index} after {self._config.poll_deadline_seconds:g} s"
                )
            pause = min(delay, self._config.poll_deadline_seconds - waited)
            await self._sleep(pause)
            waited += pause
            delay = min(delay * 1.5, self._config.poll_max_seconds)

    def _result(self, operation: types.GenerateVideosOperation, command: RenderClip) -> types.Video:
        if operation.error:
            code = int(operation.error.get("code", 0) or 0)
            message = str(operation.error.get("message") or "no reason given")
            raise _OperationFailed(f"{message} (code {code})", retryable=code in _RETRYABLE_OPERATION_CODES)
        response = operation.response or operation.result
        videos = (response.generated_videos if response else None) or []
        if not videos or videos[0].video is None:
            filtered = response.rai_media_filtered_count if response else None
            reasons = "; ".join(response.rai_media_filtered_reasons or []) if response else ""
            if filtered:
                raise ProviderError(
                    f"Veo's safety filter refused clip {command.clip.index}: {reasons or 'no reason given'}"
                )
            raise ProviderError(f"Veo finished clip {command.clip.index} without a video")
        video = videos[0].video
        if video.video_bytes or video.uri:
            return video
        raise ProviderError(f"Veo returned clip {command.clip.index} with neither bytes nor a URI")

    # -- fit to the job's frame ------------------------------------------------------------------------------------
    async def _fit(
        self, source: Path, out: Path, command: RenderClip, info: MediaInfo, *, cut: float | None, captions: str | None
    ) -> None:
        """One encode: scaled and cropped to the job's frame, captions (an `ass` filter) burnt in last so they are
        laid out on the final frame, and cut at `cut` seconds when given."""
        width, height = frame_size(command.aspect_ratio, command.resolution)
        has_audio = info.audio_codec is not None
        picture = f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1"
        if captions:
            picture += "," + captions
        args = ["-i", str(source)]
        if not has_audio:
            # Veo 2, or generate_audio off: a silent track, so every clip has the same streams for the merger.
            args += ["-f", "lavfi", "-i", f"anullsrc=r={AUDIO_RATE}:cl=mono"]
        args += [
            "-map", "0:v:0",
            "-map", "0:a:0" if has_audio else "1:a:0",
            "-vf", picture,
            "-r", str(FPS),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "192k", "-ar", str(AUDIO_RATE),
            "-shortest",
            *(["-t", f"{cut:.6f}"] if cut is not None else []),
            "-movflags", "+faststart",
            str(out),
        ]  # fmt: skip
        await run_ffmpeg(*args)


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of an image as it is shown (EXIF orientation applied)."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn
            return height, width
    return width, height


def resize_mode(avatar: tuple[int, int], clip_aspect: str, frame: tuple[int, int]) -> types.ImageResizeMode:
    """How Veo should fit the avatar into a `clip_aspect` clip that is then centre-cropped to `frame`: `pad` when the
    padded avatar still covers that crop (so no bar shows in the ad, and padding loses less of the picture), else
    `crop`, which fills the clip."""
    clip_w, clip_h = (16.0, 9.0) if clip_aspect == "16:9" else (9.0, 16.0)
    frame_w, frame_h = frame
    shown = min(clip_w / frame_w, clip_h / frame_h)  # the part of the clip the frame keeps, in clip units
    fitted = min(clip_w / avatar[0], clip_h / avatar[1])  # the avatar padded into the clip
    slack = 1.01  # a pixel or two of bar is lost in the encoder's rounding anyway
    covers = avatar[0] * fitted * slack >= frame_w * shown and avatar[1] * fitted * slack >= frame_h * shown
    return types.ImageResizeMode.PAD if covers else types.ImageResizeMode.CROP


def _cut_at(speech: SpeechSpan | None, source: MediaInfo) -> float | None:
    """Where to end a clip whose speech is `speech`: TRIM_TAIL_S after it, on a frame boundary (so the audio, cut at
    the same moment, is as long as the video), at least MIN_CLIP_S. None: keep it whole (no speech, or nothing
    worth a frame to cut)."""
    length = source.video_duration_s or source.duration_s
    if speech is None or not length:
        return None
    frames = max(math.ceil((speech.end + TRIM_TAIL_S) * FPS), math.ceil(MIN_CLIP_S * FPS))
    if frames >= math.floor(length * FPS):
        return None
    return frames / FPS


class _OperationFailed(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _explain(exc: genai_errors.APIError, index: int) -> Exception:
    reason = describe(exc)
    if is_retryable(exc):
        return TransientError(f"Veo is unavailable for clip {index} ({reason})")
    return ProviderError(f"Veo rejected clip {index} ({reason})")


def _backoff(attempt: int) -> float:
    # 2, 4, 8, 16, 32 s (capped at 60), each with up to a quarter added at random so retries do not line up.
    base = min(60.0, 2.0 * math.pow(2, attempt))
    return base * (1 + random.random() / 4)


def _mime_type(path: Path) -> str:
    with path.open("rb") as f:
        return image_mime_type(f.read(12)) or "image/jpeg"
