"""A fake Veo on Vertex AI: `:predictLongRunning` starts an operation, `:fetchPredictOperation` polls it.

It answers like Vertex's documented REST API: the operation name is
`projects/P/locations/L/publishers/google/models/M/operations/ID`; `done` is absent until the video is ready; the
response holds `videos[]` with `bytesBase64Encoded` (or, when the request set `storageUri`, a `gcsUri` of a file
Veo wrote under that prefix, in a folder of its own per operation), plus `raiMediaFilteredCount`/
`raiMediaFilteredReasons`. The prompt is optional when there is an image (image-to-video), required without one.

The video is real: the request's first frame held for `durationSeconds` at the requested aspect ratio and resolution,
24 fps, made by ffmpeg. An image whose shape differs from the clip's is fitted as `resizeMode` says: `pad` (the
default) shows all of it between black bars, `crop` fills the frame and cuts the overflow, centred. Its sound is like
Veo's: a voice-like tone for as long as the quoted line in the prompt takes to say (WORDS_PER_SECOND, a short silence
at each comma and full stop), starting a moment in, then silence to the end of the clip, which is longer than the line.

Latency and quota, for benchmarks and concurrency tests: `operation_seconds` keeps each operation running that long
(wall time) before a poll finds it done, `requests_per_minute` answers 429 RESOURCE_EXHAUSTED to a start beyond that
many in the last 60 s (as the project quota does), and `max_in_flight` is the most operations that ran at once."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.runtime.ffmpeg import ffmpeg_exe
from tests.fakes.google_auth import ServiceAccount, TokenIssuer
from tests.fakes.server import FakeServer, Request, Response, google_error

_MODEL_PATH = (
    r"/v1beta1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google/models/(?P<model>[^/:]+)"
)
# A brisk ad read; with the gaps below, about what Veo 3 speaks a line at.
WORDS_PER_SECOND = 2.6
SPEECH_START_S = 0.3  # Veo's speakers take a moment before the first word
CLAUSE_GAP_S = 0.25
SENTENCE_GAP_S = 0.4
_QUOTED = re.compile(r'"([^"\n]+)"')
_SIZES = {
    ("16:9", "720p"): (1280, 720),
    ("9:16", "720p"): (720, 1280),
    ("16:9", "1080p"): (1920, 1080),
    ("9:16", "1080p"): (1080, 1920),
}


RESIZE_MODES = ("pad", "crop")  # the documented values; the SDK sends them upper-case (ImageResizeMode)


@dataclass
class Operation:
    name: str
    request: dict[str, Any]
    polls_left: int
    outcome: dict[str, Any] | None = None  # "response" or "error", computed when done
    polls: int = 0
    started: float = field(default_factory=time.monotonic)
    prepared: threading.Thread | None = None  # making the outcome while the operation runs, as Veo does
    reported_done: float | None = None  # when a poll first found it done (time.monotonic)


@dataclass
class VeoBehaviour:
    polls_until_done: int = 2  # fetchPredictOperation answers not-done this many times first
    refuse: str | None = None  # a RAI reason: the operation ends with no video and this filter reason
    fail: tuple[int, str] | None = None  # (google.rpc code, message): the operation ends in error
    on_gcs_write: Callable[[str, bytes], None] | None = None  # stores the clip when the request set storageUri
    read_gcs: Callable[[str], bytes] | None = None  # reads a first frame given by gcsUri, as Veo reads the bucket
    operation_seconds: float = 0.0  # an operation is done no sooner than this after it started (wall time)
    requests_per_minute: int | None = None  # the project quota: a start beyond it in the last 60 s gets a 429


class FakeVeo(FakeServer):
    def __init__(self, account: ServiceAccount | None = None) -> None:
        super().__init__()
        self.account = account or ServiceAccount()
        self.tokens = TokenIssuer(self, self.account)
        self.behaviour = VeoBehaviour()
        self.operations: dict[str, Operation] = {}
        self._running: set[str] = set()  # operations started and not yet found done by a poll
        self.max_in_flight = 0
        self._ids = itertools.count(1)
        self.route("POST", _MODEL_PATH + ":predictLongRunning", self._start)
        self.route("POST", _MODEL_PATH + ":fetchPredictOperation", self._fetch)

    @property
    def generate_calls(self) -> list[Request]:
        return self.calls("POST", r":predictLongRunning$")

    @property
    def poll_calls(self) -> list[Request]:
        return self.calls("POST", r":fetchPredictOperation$")

    def _start(self, request: Request) -> Response:
        if not self.tokens.authorized(request):
            return self.tokens.unauthenticated()
        body = request.json()
        instances = body.get("instances") or []
        params = body.get("parameters") or {}
        if len(instances) != 1:
            return google_error(400, "INVALID_ARGUMENT", "exactly one instance is supported")
        image = instances[0].get("image") or {}
        has_image = bool(image.get("bytesBase64Encoded") or image.get("gcsUri"))
        if not has_image and not instances[0].get("prompt"):
            return google_error(400, "INVALID_ARGUMENT", "instances[0].prompt is required for text-to-video")
        if str(params.get("resizeMode", "pad")).lower() not in RESIZE_MODES:
            return google_error(400, "INVALID_ARGUMENT", f"unsupported resizeMode {params.get('resizeMode')!r}")
        if params.get("durationSeconds") not in (4, 6, 8):
            return google_error(400, "INVALID_ARGUMENT", "durationSeconds must be 4, 6 or 8 for this model")
        if params.get("aspectRatio") not in ("16:9", "9:16"):
            return google_error(400, "INVALID_ARGUMENT", f"unsupported aspectRatio {params.get('aspectRatio')!r}")
        if params.get("resolution", "720p") not in ("720p", "1080p"):
            return google_error(400, "INVALID_ARGUMENT", "resolution must be 720p or 1080p")
        p = request.params
        name = (
            f"projects/{p['project']}/locations/{p['location']}/publishers/google/models/{p['model']}"
            f"/operations/{next(self._ids):08d}-fake"
        )
        with self.lock:
            quota = self.behaviour.requests_per_minute
            if quota is not None:
                now = time.monotonic()
                if sum(1 for op in self.operations.values() if op.started > now - 60) >= quota:
                    return google_error(
                        429,
                        "RESOURCE_EXHAUSTED",
                        "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model "
                        f"with base model: {p['model']}. Please submit a quota increase request.",
                    )
            op = self.operations[name] = Operation(name, body, self.behaviour.polls_until_done)
            self._running.add(name)
            self.max_in_flight = max(self.max_in_flight, len(self._running))
        if self.behaviour.operation_seconds > 0:
            # The video is made during the operation's time, not when a poll asks for it.
            op.prepared = threading.Thread(target=self._settle, args=(op,), daemon=True)
            op.prepared.start()
        return Response(200, {"name": name})

    def _fetch(self, request: Request) -> Response:
        if not self.tokens.authorized(request):
            return self.tokens.unauthenticated()
        name = (request.json() or {}).get("operationName", "")
        with self.lock:
            op = self.operations.get(name)
            if op is None:
                return google_error(404, "NOT_FOUND", f"Operation {name} not found")
            op.polls += 1
            if op.polls_left > 0 or time.monotonic() - op.started < self.behaviour.operation_seconds:
                op.polls_left = max(0, op.polls_left - 1)
                return Response(200, {"name": name})
        if op.prepared is not None:
            op.prepared.join()
        self._settle(op)
        with self.lock:
            self._running.discard(name)
            op.reported_done = op.reported_done or time.monotonic()
        assert op.outcome is not None
        return Response(200, {"name": name, "done": True, **op.outcome})

    def _settle(self, op: Operation) -> None:
        if op.outcome is None:
            outcome = self._finish(op)
            with self.lock:
                op.outcome = op.outcome or outcome

    def _finish(self, op: Operation) -> dict[str, Any]:
        behaviour = self.behaviour
        if behaviour.fail is not None:
            code, message = behaviour.fail
            return {"error": {"code": code, "message": message}}
        if behaviour.refuse is not None:
            return {
                "response": {
                    "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                    "raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": [behaviour.refuse],
                }
            }
        instance, params = op.request["instances"][0], op.request["parameters"]
        size = _SIZES[(params["aspectRatio"], params.get("resolution", "720p"))]
        image = instance.get("image") or {}
        if image.get("bytesBase64Encoded"):
            first_frame: bytes | None = base64.b64decode(image["bytesBase64Encoded"])
        elif image.get("gcsUri") and behaviour.read_gcs is not None:
            first_frame = behaviour.read_gcs(image["gcsUri"])
        else:
            first_frame = None
        quoted = _QUOTED.findall(instance.get("prompt") or "")
        video = make_clip(
            first_frame,
            size,
            int(params["durationSeconds"]),
            bool(params.get("generateAudio")),
            line=quoted[-1] if quoted else None,
            resize=str(params.get("resizeMode", "pad")).lower(),
        )
        entry: dict[str, Any] = {"mimeType": "video/mp4"}
        storage_uri = params.get("storageUri")
        if storage_uri:
            # As Veo does: under the prefix, in a folder named by a number of its own, so operations never collide.
            folder = op.name.rsplit("/", 1)[-1].removesuffix("-fake")
            uri = f"{storage_uri.rstrip('/')}/{int(folder) + 4_861_000_000_000_000_000}/sample_0.mp4"
            assert behaviour.on_gcs_write is not None, "storageUri given but the fake has no GCS to write to"
            behaviour.on_gcs_write(uri, video)
            entry["gcsUri"] = uri
        else:
            entry["bytesBase64Encoded"] = base64.b64encode(video).decode()
        return {
            "response": {
                "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                "raiMediaFilteredCount": 0,
                "videos": [entry],
            }
        }


def speech_segments(line: str, seconds: float) -> list[tuple[float, float]]:
    """When the fake's voice sounds while saying `line` in a clip of `seconds`: a stretch per clause, a gap at each
    comma or full stop, from SPEECH_START_S on, never past the clip's end."""
    segments: list[tuple[float, float]] = []
    at = SPEECH_START_S
    for clause in re.findall(r"[^,;:.!?]+[,;:.!?]*", line):
        words = len(clause.split())
        if not words:
            continue
        end = min(at + words / WORDS_PER_SECOND, seconds)
        if end > at:
            segments.append((round(at, 3), round(end, 3)))
        at = end + (SENTENCE_GAP_S if clause.rstrip()[-1] in ".!?" else CLAUSE_GAP_S)
    return segments


def _voice(line: str | None, seconds: float) -> str:
    """The lavfi source of the clip's sound: a tone that rises and falls like speech, during the line only."""
    level = "0.3+0.25*sin(2*PI*3*t)"
    if line is not None:
        during = "+".join(f"between(t,{a},{b})" for a, b in speech_segments(line, seconds)) or "0"
        level = f"if({during},{level},0)"
    return f"sine=f=220:r=48000,volume='{level}':eval=frame"


def make_clip(
    image: bytes | None,
    size: tuple[int, int],
    seconds: int,
    audio: bool,
    line: str | None = None,
    resize: str = "pad",
) -> bytes:
    """The first frame held still, fitted to `size` (`pad`: whole, between black bars; `crop`: filling the frame,
    centred), 24 fps H.264; with `audio`, a voice-like tone while `line` is said (the whole clip when there is no
    line), silence after it."""
    picture = _picture(image, size, seconds, resize)
    if not audio:
        return picture
    with tempfile.TemporaryDirectory() as tmp:
        video, out = Path(tmp) / "picture.mp4", Path(tmp) / "clip.mp4"
        video.write_bytes(picture)
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-i", str(video), "-f", "lavfi", "-i", _voice(line, seconds),
            "-map", "0:v", "-map", "1:a", "-t", str(seconds),
            "-c:v", "copy", "-c:a", "aac", "-ac", "2",
            str(out),
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
        return out.read_bytes()


# Every clip of a job starts from the same avatar: its still picture is encoded once (the fake's work would be Veo's,
# on Google's machines, and must not weigh on the machine under test). Keyed by the image's bytes and the fit.
_pictures: dict[tuple[bytes, tuple[int, int], int, str], bytes] = {}
_pictures_lock = threading.Lock()


def _picture(image: bytes | None, size: tuple[int, int], seconds: int, resize: str) -> bytes:
    key = (hashlib.sha256(image or b"").digest(), size, seconds, resize)
    with _pictures_lock:
        cached = _pictures.get(key)
        if cached is None:
            cached = _pictures[key] = _encode_picture(image, size, seconds, resize)
        return cached


def _encode_picture(image: bytes | None, size: tuple[int, int], seconds: int, resize: str) -> bytes:
    width, height = size
    if resize == "crop":
        fit = f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}"
    else:
        fit = (
            f"scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black"
        )
    with tempfile.TemporaryDirectory() as tmp:
        frame = Path(tmp) / "frame"
        if image is not None:
            frame.write_bytes(image)
            video_in = ["-loop", "1", "-framerate", "24", "-i", str(frame)]
        else:  # a gcsUri first frame and no bucket to read it from: a plain frame
            video_in = ["-f", "lavfi", "-i", f"color=c=0x406080:s={width}x{height}:r=24"]
        out = Path(tmp) / "picture.mp4"
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *video_in,
            "-t", str(seconds),
            "-vf", f"{fit},setsar=1,format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-r", "24",
            str(out),
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
        return out.read_bytes()
