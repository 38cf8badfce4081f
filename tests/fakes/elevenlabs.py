"""A fake ElevenLabs speech-to-speech ("Voice Changer") API, answering like the documented HTTP API.

`POST /v1/speech-to-speech/{voice_id}` (the documented path; SDK 2.x posts to its alias `/v1/voice-changer/{voice_id}`)
takes a multipart form (`audio` file, `model_id`, `remove_background_noise`, ...) and the query `output_format`,
authenticated by the `xi-api-key` header. The "conversion" decodes the upload with ffmpeg and inverts its polarity:
the same length and envelope as the input (so joins and sync can be checked), but unmistakably not the original (its
correlation with the input is -1). It answers slowly enough for concurrency to be observable, and with
`429 too_many_concurrent_requests` when more requests are in flight than the plan allows.

Errors follow ElevenLabs' shape `{"detail": {"status": ..., "message": ...}}`: 401 `invalid_api_key`, 404
`voice_not_found` (what the API answered in 2025; older answers used 400). The 5-minute / 50 MB input limits are
documented but their error answers are not: the fake uses 400 `audio_too_long` and 413.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

import numpy as np

from services.runtime.ffmpeg import ffmpeg_exe
from tests.fakes.server import FakeServer, Request, Response

PREMADE_VOICES = frozenset(
    {
        "JBFqnCBsd6RMkjVDRZzb",  # George
        "EXAVITQu4vr4xnSDxMaL",  # Sarah
        "onwK4e9ZLuTAKqWW03F9",  # Daniel
        "XB0fDUnXU5powFXDhCwa",  # Charlotte
    }
)
STS_MODELS = frozenset({"eleven_multilingual_sts_v2", "eleven_english_sts_v2"})
PCM_RATES = frozenset({8000, 16000, 22050, 24000, 32000, 44100, 48000})
MAX_INPUT_S = 300.0
MAX_INPUT_BYTES = 50 * 1000 * 1000


def error(status: int, code: str, message: str) -> Response:
    return Response(status, {"detail": {"status": code, "message": message}})


@dataclass
class Conversion:
    """One accepted request, as the fake understood it."""

    voice_id: str
    fields: dict[str, str]  # the multipart form's text fields
    output_format: str
    filename: str
    input_samples: np.ndarray  # the upload, decoded to mono int16 at the output rate
    input_rate: int = 0  # the upload's own sample rate (from its WAV header when it is one)
    output_samples: int = 0


@dataclass
class _Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


def parse_multipart(content_type: str, body: bytes) -> _Form:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    form = _Form()
    if not message.is_multipart():
        return form
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files[str(name)] = (filename, data)
        else:
            form.fields[str(name)] = data.decode()
    return form


def _decode(audio: bytes, rate: int) -> np.ndarray:
    args = ["-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1"]
    result = subprocess.run([ffmpeg_exe(), *args], input=audio, capture_output=True, check=False)
    if result.returncode != 0:
        raise ValueError(result.stderr.decode(errors="replace").strip().splitlines()[-1:])
    return np.frombuffer(result.stdout, dtype="<i2").astype(np.int16)


class FakeElevenLabs(FakeServer):
    def __init__(
        self,
        api_key: str = "sk_fake_elevenlabs_key_0123456789",
        *,
        plan_concurrency: int = 2,
        delay_s: float = 0.15,
        voices: frozenset[str] = PREMADE_VOICES,
        max_input_s: float = MAX_INPUT_S,
        max_input_bytes: int = MAX_INPUT_BYTES,
        length_error_ms: float = 0.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.plan_concurrency = plan_concurrency
        self.delay_s = delay_s
        self.voices = voices
        self.max_input_s = max_input_s
        self.max_input_bytes = max_input_bytes
        # A real conversion need not come back exactly as long as its input: a few ms more (or less, if negative).
        self.length_error_ms = length_error_ms
        self.conversions: list[Conversion] = []
        self.rejected_busy = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._count_lock = threading.Lock()
        for path in ("speech-to-speech", "voice-changer"):
            self.route("POST", rf"/v1/{path}/(?P<voice_id>[^/]+)", self._convert)

    def _convert(self, request: Request) -> Response:
        if request.headers.get("xi-api-key") != self.api_key:
            return error(401, "invalid_api_key", "Invalid API key")
        with self._count_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            busy = self.in_flight > self.plan_concurrency
            if busy:
                self.rejected_busy += 1
        try:
            if busy:
                return error(
                    429,
                    "too_many_concurrent_requests",
                    f"Your plan allows {self.plan_concurrency} concurrent requests; "
                    "wait for one to finish before sending another.",
                )
            time.sleep(self.delay_s)  # long enough for overlapping requests to be seen
            return self._answer(request)
        finally:
            with self._count_lock:
                self.in_flight -= 1

    def _answer(self, request: Request) -> Response:
        voice_id = request.params["voice_id"]
        if voice_id not in self.voices:
            return error(404, "voice_not_found", f"A voice with the voice_id {voice_id} was not found.")
        form = parse_multipart(request.headers.get("content-type", ""), request.body)
        if "audio" not in form.files:
            return Response(422, {"detail": [{"loc": ["body", "audio"], "msg": "Field required", "type": "missing"}]})
        model_id = form.fields.get("model_id", "eleven_english_sts_v2")
        if model_id not in STS_MODELS:
            return error(400, "invalid_model_id", f"Model {model_id} cannot do voice conversion.")
        output_format = request.arg("output_format", "mp3_44100_128") or ""
        kind, _, rate_text = output_format.partition("_")
        if kind not in ("pcm", "wav") or not rate_text.isdigit() or int(rate_text) not in PCM_RATES:
            return error(400, "invalid_output_format", f"The fake answers pcm_* and wav_* only, not {output_format}.")
        rate = int(rate_text)
        filename, audio = form.files["audio"]
        if len(audio) > self.max_input_bytes:
            return error(413, "file_too_large", f"The audio file is larger than {self.max_input_bytes} bytes.")
        try:
            samples = _decode(audio, rate)
        except ValueError as exc:
            return error(400, "invalid_audio", f"The audio could not be decoded: {exc}")
        if len(samples) / rate > self.max_input_s:
            return error(
                400,
                "audio_too_long",
                f"The audio is {len(samples) / rate:.1f} s long; the limit is {self.max_input_s} s.",
            )
        converted = -np.clip(samples.astype(np.int32), -32767, 32767)
        extra = round(self.length_error_ms / 1000 * rate)
        if extra > 0:
            converted = np.concatenate([converted, np.zeros(extra, dtype=np.int32)])
        elif extra < 0:
            converted = converted[:extra]
        pcm = converted.astype("<i2").tobytes()
        input_rate = int.from_bytes(audio[24:28], "little") if audio[:4] == b"RIFF" else 0
        with self.lock:
            self.conversions.append(
                Conversion(voice_id, form.fields, output_format, filename, samples, input_rate, len(converted))
            )
        if kind == "wav":
            pcm = _wav_header(len(pcm), rate) + pcm
        return Response(
            200, pcm, {"Content-Type": "audio/pcm" if kind == "pcm" else "audio/wav", "request-id": uuid.uuid4().hex}
        )


def _wav_header(data_bytes: int, rate: int) -> bytes:
    def u32(v: int) -> bytes:
        return v.to_bytes(4, "little")

    def u16(v: int) -> bytes:
        return v.to_bytes(2, "little")

    fmt = u16(1) + u16(1) + u32(rate) + u32(rate * 2) + u16(2) + u16(16)
    return b"RIFF" + u32(36 + data_bytes) + b"WAVEfmt " + u32(16) + fmt + b"data" + u32(data_bytes)
