"""A fake Veo on Vertex AI: `:predictLongRunning` starts an operation, `:fetchPredictOperation` polls it.

It answers like Vertex's documented REST API: the operation name is
`projects/P/locations/L/publishers/google/models/M/operations/ID`; `done` is absent until the video is ready; the
response holds `videos[]` with `bytesBase64Encoded` (or `gcsUri` when the request set `storageUri`), plus
`raiMediaFilteredCount`/`raiMediaFilteredReasons`. The video is real: the request's first frame held for
`durationSeconds` at the requested aspect ratio and resolution, 24 fps, made by ffmpeg. Its sound is like Veo's: a
voice-like tone for as long as the quoted line in the prompt takes to say (WORDS_PER_SECOND, a short silence at each
comma and full stop), starting a moment in, then silence to the end of the clip, which is longer than the line."""

from __future__ import annotations

import base64
import itertools
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class Operation:
    name: str
    request: dict[str, Any]
    polls_left: int
    outcome: dict[str, Any] | None = None  # "response" or "error", computed when done
    polls: int = 0


@dataclass
class VeoBehaviour:
    polls_until_done: int = 2  # fetchPredictOperation answers not-done this many times first
    refuse: str | None = None  # a RAI reason: the operation ends with no video and this filter reason
    fail: tuple[int, str] | None = None  # (google.rpc code, message): the operation ends in error
    on_gcs_write: Callable[[str, bytes], None] | None = None  # stores the clip when the request set storageUri
    read_gcs: Callable[[str], bytes] | None = None  # reads a first frame given by gcsUri, as Veo reads the bucket


class FakeVeo(FakeServer):
    def __init__(self, account: ServiceAccount | None = None) -> None:
        super().__init__()
        self.account = account or ServiceAccount()
        self.tokens = TokenIssuer(self, self.account)
        self.behaviour = VeoBehaviour()
        self.operations: dict[str, Operation] = {}
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
        if len(instances) != 1 or not instances[0].get("prompt"):
            return google_error(400, "INVALID_ARGUMENT", "instances[0].prompt is required")
        image = instances[0].get("image") or {}
        if not (image.get("bytesBase64Encoded") or image.get("gcsUri")):
            return google_error(400, "INVALID_ARGUMENT", "image-to-video needs instances[0].image")
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
            self.operations[name] = Operation(name, body, self.behaviour.polls_until_done)
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
            if op.polls_left > 0:
                op.polls_left -= 1
                return Response(200, {"name": name})
        if op.outcome is None:
            op.outcome = self._finish(op)
        return Response(200, {"name": name, "done": True, **op.outcome})

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
        image = instance["image"]
        if image.get("bytesBase64Encoded"):
            first_frame: bytes | None = base64.b64decode(image["bytesBase64Encoded"])
        elif behaviour.read_gcs is not None:
            first_frame = behaviour.read_gcs(image["gcsUri"])
        else:
            first_frame = None
        quoted = _QUOTED.findall(instance["prompt"])
        video = make_clip(
            first_frame,
            size,
            int(params["durationSeconds"]),
            bool(params.get("generateAudio")),
            line=quoted[-1] if quoted else None,
        )
        entry: dict[str, Any] = {"mimeType": "video/mp4"}
        storage_uri = params.get("storageUri")
        if storage_uri:
            uri = f"{storage_uri.rstrip('/')}/sample_0.mp4"
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


def make_clip(image: bytes | None, size: tuple[int, int], seconds: int, audio: bool, line: str | None = None) -> bytes:
    """The first frame held still, fitted to `size`, 24 fps H.264; with `audio`, a voice-like tone while `line` is
    said (the whole clip when there is no line), silence after it."""
    width, height = size
    with tempfile.TemporaryDirectory() as tmp:
        frame = Path(tmp) / "frame"
        if image is not None:
            frame.write_bytes(image)
            video_in = ["-loop", "1", "-framerate", "24", "-i", str(frame)]
        else:  # a gcsUri first frame and no bucket to read it from: a plain frame
            video_in = ["-f", "lavfi", "-i", f"color=c=0x406080:s={width}x{height}:r=24"]
        audio_in = ["-f", "lavfi", "-i", _voice(line, seconds)] if audio else []
        out = Path(tmp) / "clip.mp4"
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *video_in, *audio_in,
            "-t", str(seconds),
            "-vf", f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-r", "24",
            *(["-c:a", "aac", "-ac", "2"] if audio else []),
            str(out),
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
        return out.read_bytes()
