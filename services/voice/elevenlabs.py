"""Voice enhancement by ElevenLabs speech-to-speech ("Voice Changer"): the cut's voice re-spoken in a chosen voice.

The merged cut's audio is decoded, split at pauses into pieces the API accepts (documented: at most 5 minutes and
50 MB per request), each piece converted with background-noise removal on, at most `concurrency` requests in flight
(the plan's concurrent-request limit: Free 2, Starter 3, Creator 5, Pro 10, Scale/Business 15), and the pieces joined
back sample-exactly. The converted voice is asked for as raw PCM so no encoder delay or padding shifts it against the
picture. It goes back under the untouched video stream, and the local enhancer then masters it to -14 LUFS exactly as
it does for the local path (AAC, faststart).

The SDK (2.x) sends `POST /v1/voice-changer/{voice_id}` (the documented path is `/v1/speech-to-speech/{voice_id}`)
as multipart with `audio`, `model_id`, `remove_background_noise`, the query `output_format` and the `xi-api-key`
header. Its streaming requests, which `speech_to_speech.convert` is, are not retried by the SDK, so every retry here
is ours.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
from elevenlabs import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError

from services.runtime.credential_errors import CredentialError, elevenlabs_refusal
from services.runtime.errors import ProviderError, TransientError
from services.runtime.ffmpeg import run_ffmpeg
from services.runtime.media_probe import decode_audio, probe
from services.runtime.settings import SettingsError, env_int
from services.voice.audio_chunks import (
    Pcm16,
    fit,
    output_lengths,
    pcm16_from_bytes,
    plan_chunks,
    to_pcm16,
    wav_bytes,
)
from services.voice.local import SILENCE_LUFS, LocalVoiceEnhancer, measure_loudness

# George: a premade voice every account has, the one ElevenLabs' own examples use.
DEFAULT_VOICE_ID: Final = "JBFqnCBsd6RMkjVDRZzb"
DEFAULT_MODEL: Final = "eleven_multilingual_sts_v2"
# Raw PCM, so pieces join without codec padding. 44.1 and 48 kHz PCM need the Pro plan; 24 kHz works on every plan
# and covers the voice band, and the mastering resamples to 48 kHz anyway.
DEFAULT_OUTPUT_FORMAT: Final = "pcm_24000"
PCM_RATES: Final = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
DEFAULT_CONCURRENCY: Final = 2  # the Free plan's limit: safe on every plan, raise it to the plan's
MAX_INPUT_S: Final = 300.0  # documented per-request limit
MAX_INPUT_BYTES: Final = 50 * 1000 * 1000  # documented per-request limit (50 MB)
DEFAULT_CHUNK_S: Final = 240.0  # a minute under the limit, so a late pause still fits
DEFAULT_BASE_URL: Final = "https://api.elevenlabs.io"
# 408/409/429 and 5xx are what the SDK itself would retry on its non-streaming calls.
_RETRY_STATUS: Final = frozenset({408, 409, 429})
_PCM_FORMAT = re.compile(r"pcm_(\d+)")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElevenLabsConfig:
    api_key: str = field(repr=False)
    default_voice_id: str = DEFAULT_VOICE_ID  # when the request names no voice
    model_id: str = DEFAULT_MODEL
    concurrency: int = DEFAULT_CONCURRENCY
    output_format: str = DEFAULT_OUTPUT_FORMAT
    max_chunk_s: float = DEFAULT_CHUNK_S
    base_url: str | None = None  # None: the SDK's production endpoint
    max_attempts: int = 6  # requests per piece before a 429/5xx/timeout becomes a TransientError
    backoff_s: float = 1.0  # first retry delay; doubles per attempt, jittered
    max_backoff_s: float = 30.0
    timeout_s: float = 240.0  # per request: a 4-minute piece takes a while to convert

    def __post_init__(self) -> None:
        if self.output_rate not in PCM_RATES:
            raise SettingsError(
                f"ADAGENT_ELEVENLABS_OUTPUT_FORMAT must be one of {', '.join(f'pcm_{r}' for r in PCM_RATES)}, "
                f"got {self.output_format!r}"
            )
        if not 1.0 <= self.max_chunk_s <= MAX_INPUT_S:
            raise SettingsError(
                f"ADAGENT_ELEVENLABS_CHUNK_SECONDS must be 1 to {MAX_INPUT_S:.0f}, got {self.max_chunk_s}"
            )
        if self.concurrency < 1 or self.max_attempts < 1:
            raise SettingsError("ElevenLabs concurrency and attempts must be at least 1")

    @property
    def output_rate(self) -> int:
        match = _PCM_FORMAT.fullmatch(self.output_format)
        return int(match.group(1)) if match else 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ElevenLabsConfig:
        api_key = env.get("ELEVENLABS_API_KEY", "").strip()
        if not api_key:
            raise SettingsError("ADAGENT_VOICE=elevenlabs needs ELEVENLABS_API_KEY")
        base_url = (env.get("ADAGENT_ELEVENLABS_BASE_URL") or env.get("ELEVENLABS_BASE_URL") or "").strip()
        return cls(
            api_key=api_key,
            default_voice_id=env.get("ADAGENT_ELEVENLABS_VOICE_ID", "").strip() or DEFAULT_VOICE_ID,
            model_id=env.get("ADAGENT_ELEVENLABS_MODEL", "").strip() or DEFAULT_MODEL,
            concurrency=env_int(env, "ADAGENT_ELEVENLABS_CONCURRENCY", DEFAULT_CONCURRENCY, minimum=1),
            output_format=env.get("ADAGENT_ELEVENLABS_OUTPUT_FORMAT", "").strip() or DEFAULT_OUTPUT_FORMAT,
            max_chunk_s=float(env_int(env, "ADAGENT_ELEVENLABS_CHUNK_SECONDS", int(DEFAULT_CHUNK_S), minimum=1)),
            base_url=base_url.rstrip("/") or None,
        )


class ElevenLabsVoiceEnhancer:
    name = "elevenlabs"

    def __init__(self, config: ElevenLabsConfig, client: AsyncElevenLabs | None = None) -> None:
        self._config = config
        self._client = client
        # One enhancer serves every job of the process, and the plan's limit is per account: share the slots.
        self._slots = asyncio.Semaphore(config.concurrency)
        self._mastering = LocalVoiceEnhancer()

    def _sdk(self) -> AsyncElevenLabs:
        if self._client is None:  # made on first use, inside the running loop its connections will belong to
            self._client = AsyncElevenLabs(
                api_key=self._config.api_key,
                base_url=self._config.base_url or DEFAULT_BASE_URL,
                timeout=self._config.timeout_s,
            )
        return self._client

    async def enhance(self, merged: Path, out: Path, voice_id: str | None) -> float | None:
        voice = voice_id or self._config.default_voice_id
        info = await asyncio.to_thread(probe, merged)
        if info.audio_codec is None or not info.audio_sample_rate:
            raise ProviderError("the merged cut has no audio track to give a new voice")
        if (await measure_loudness(merged)).integrated_lufs <= SILENCE_LUFS:
            # No voice to convert: paying for it would buy silence back. The local path passes it through.
            return await self._mastering.enhance(merged, out, voice_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        voiced_wav = out.with_name(f".{out.stem}.elevenlabs.wav")
        voiced_cut = out.with_name(f".{out.stem}.elevenlabs.mov")
        try:
            pcm = await self._convert_track(merged, info.audio_sample_rate, voice)
            await asyncio.to_thread(voiced_wav.write_bytes, wav_bytes(pcm, self._config.output_rate))
            await run_ffmpeg(
                "-i", str(merged), "-i", str(voiced_wav),
                "-map", "0:v?", "-c:v", "copy",
                # The voice's own 16-bit PCM, in MOV as the merged cut's (see services/merger/concat.py): lossless,
                # so the only lossy encode is the mastering's AAC, and written alike by every ffmpeg from 4.4 on.
                "-map", "1:a:0", "-c:a", "pcm_s16le",
                "-f", "mov", str(voiced_cut),
            )  # fmt: skip
            converted = await measure_loudness(voiced_cut)
            if converted.integrated_lufs <= SILENCE_LUFS:
                raise ProviderError(f"ElevenLabs returned silence for voice {voice} (the cut has speech)")
            return await self._mastering.enhance(voiced_cut, out, voice_id)
        finally:
            voiced_wav.unlink(missing_ok=True)
            voiced_cut.unlink(missing_ok=True)

    async def _convert_track(self, merged: Path, rate: int, voice: str) -> Pcm16:
        """The cut's audio (mono, at its own rate) converted piece by piece, joined, exactly as long as the source."""
        samples = await asyncio.to_thread(decode_audio, merged, rate)
        max_samples = min(round(self._config.max_chunk_s * rate), (MAX_INPUT_BYTES - 1024) // 2)
        bounds = plan_chunks(samples, rate, max_samples)
        lengths = output_lengths(bounds, rate, self._config.output_rate)
        _log.info(
            "elevenlabs: converting %.1f s of audio in %d piece(s) with voice %s, model %s",
            len(samples) / rate,
            len(bounds),
            voice,
            self._config.model_id,
        )
        try:
            async with asyncio.TaskGroup() as group:  # one failed piece cancels the rest
                tasks = [
                    group.create_task(
                        self._convert_piece(voice, wav_bytes(to_pcm16(samples[a:b]), rate), i, len(bounds))
                    )
                    for i, (a, b) in enumerate(bounds, start=1)
                ]
        except ExceptionGroup as failed:
            # The handler tells retryable from final by the exception's type, so hand it one plain exception; a
            # final refusal outranks a transient failure, since retrying the job cannot get past it.
            final = [e for e in failed.exceptions if not isinstance(e, TransientError)]
            raise (final or list(failed.exceptions))[0] from None
        return np.concatenate([fit(task.result(), n) for task, n in zip(tasks, lengths, strict=True)])

    async def _convert_piece(self, voice: str, wav: bytes, index: int, count: int) -> Pcm16:
        """One request, retried on 429/5xx/timeouts with jittered exponential backoff; other 4xx are final."""
        config = self._config
        reason = ""
        for attempt in range(1, config.max_attempts + 1):
            retry_after: float | None = None
            async with self._slots:
                try:
                    stream = self._sdk().speech_to_speech.convert(
                        voice,
                        audio=(f"piece-{index:03d}.wav", wav, "audio/wav"),
                        model_id=config.model_id,
                        output_format=config.output_format,
                        remove_background_noise=True,
                        request_options={"timeout_in_seconds": int(config.timeout_s)},
                    )
                    return pcm16_from_bytes(b"".join([chunk async for chunk in stream]))
                except ApiError as exc:
                    status = exc.status_code or 0
                    if status not in _RETRY_STATUS and status < 500:
                        raise self._refusal(exc, voice) from None
                    reason = f"HTTP {status}{_detail_text(exc.body, prefix=': ')}"
                    retry_after = _retry_after(exc.headers)
                except httpx.TimeoutException:
                    reason = f"no answer within {config.timeout_s:.0f} s"
                except httpx.TransportError as exc:
                    reason = f"connection failed ({type(exc).__name__})"
            if attempt < config.max_attempts:
                # Waits outside the semaphore: a backing-off piece must not hold a slot another piece could use.
                delay = self._delay(attempt, retry_after)
                _log.warning(
                    "elevenlabs: piece %d/%d attempt %d failed (%s); retrying in %.2f s",
                    index,
                    count,
                    attempt,
                    self._scrub(reason),
                    delay,
                )
                await asyncio.sleep(delay)
        raise TransientError(
            f"ElevenLabs speech-to-speech failed {config.max_attempts} times for piece {index}/{count}: "
            f"{self._scrub(reason)}"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._config.max_backoff_s)
        ceiling = min(self._config.backoff_s * 2.0 ** (attempt - 1), self._config.max_backoff_s)
        # Half fixed, half random: pieces rejected together do not all come back at the same moment.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _refusal(self, exc: ApiError, voice: str) -> ProviderError:
        status = exc.status_code
        refused = elevenlabs_refusal(status, exc.body)  # the key: worded as for every provider (credential_errors)
        if refused is not None:
            return CredentialError(refused.provider, self._scrub(str(refused)))
        what = {
            402: "asked for payment",
            404: f"does not know voice {voice!r} or the model",
            422: "rejected the request",
        }.get(status or 0, "refused the request")
        return ProviderError(self._scrub(f"ElevenLabs {what} (HTTP {status}){_detail_text(exc.body, prefix=': ')}"))

    def _scrub(self, text: str) -> str:
        """The provider's message goes to the user: make sure the key never rides along in it."""
        return text.replace(self._config.api_key, "***") if self._config.api_key else text


def _detail_text(body: Any, prefix: str = "") -> str:
    """ElevenLabs' reason from an error body: `{"detail": {"status"|"code", "message"}}`, or FastAPI's validation
    list `{"detail": [{"loc", "msg"}]}`, or plain text."""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status") or detail.get("type")
        message = detail.get("message") or detail.get("msg") or ""
        text = f"{code}: {message}" if code and message else str(code or message)
    elif isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        text = "; ".join(parts)
    else:
        text = str(detail or "").strip()
    return f"{prefix}{text[:500]}" if text else ""


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = {k.lower(): v for k, v in (headers or {}).items()}.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our own backoff
