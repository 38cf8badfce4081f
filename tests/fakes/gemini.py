"""A fake Gemini generateContent endpoint, on the Developer API path (API key in `x-goog-api-key`) and the Vertex AI
path (Bearer token from the fake's own token endpoint), answering in the documented GenerateContentResponse shape.

By default it answers like a good model: it reads the script between `<script>` and `</script>` in the prompt, splits
it into sentence-based clips that fit 8 seconds and returns them as the JSON the response schema asks for. Tests can
queue other answers (any text, a raw response such as a safety block) and inspect what each request carried.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import deque
from typing import Any

from services.prompter.script_split import speech_seconds, split_script
from tests.fakes.google_auth import ServiceAccount, TokenIssuer
from tests.fakes.server import FakeServer, Request, Response, google_error

DEVELOPER_PATH = r"/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):generateContent"
VERTEX_PATH = (
    r"/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):generateContent"
)
GENERATE = r":generateContent$"

_SCRIPT = re.compile(r"<script>\s*(.*?)\s*</script>", re.S)
_CAMERAS = ("medium close-up, eye level, slow push-in", "medium shot, gentle handheld drift", "close-up, eye level")


def text_response(text: str, *, finish_reason: str = "STOP", model: str = "gemini-2.5-flash") -> Response:
    return Response(
        200,
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish_reason, "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": 1290,
                "candidatesTokenCount": max(1, len(text) // 4),
                "totalTokenCount": 1290 + max(1, len(text) // 4),
            },
            "modelVersion": model,
            "responseId": "fake-response",
        },
    )


def prompt_blocked(reason: str = "SAFETY") -> Response:
    """The prompt itself was blocked: no candidates, only promptFeedback."""
    return Response(
        200,
        {
            "promptFeedback": {
                "blockReason": reason,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                ],
            },
            "usageMetadata": {"promptTokenCount": 1290, "totalTokenCount": 1290},
            "modelVersion": "gemini-2.5-flash",
        },
    )


def answer_blocked(reason: str = "SAFETY") -> Response:
    """The candidate was stopped by a filter: a finishReason and ratings, no content."""
    return Response(
        200,
        {
            "candidates": [
                {
                    "finishReason": reason,
                    "index": 0,
                    "safetyRatings": [
                        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": True}
                    ],
                }
            ],
            "usageMetadata": {"promptTokenCount": 1290, "totalTokenCount": 1290},
            "modelVersion": "gemini-2.5-flash",
        },
    )


def good_plan(script: str) -> dict[str, Any]:
    """What a good model answers: sentence-based clips that each fit 8 s of speech."""
    clips = []
    for i, line in enumerate(split_script(script)):
        clips.append(
            {
                "line": line,
                "visual_prompt": f"The presenter from the reference image, in a bright studio; {_CAMERAS[i % 3]}; "
                "warm and confident, lips in sync with the speech.",
                "duration_seconds": float(min(8, max(4, 2 * round(speech_seconds(line) / 2 + 0.5)))),
            }
        )
    return {"clips": clips}


class FakeGemini(FakeServer):
    def __init__(
        self,
        *,
        api_key: str = "fake-gemini-api-key-0001",
        account: ServiceAccount | None = None,
        delay_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.delay_s = delay_s  # how long the model takes to answer a well-formed request (benchmarks)
        self.account = account or ServiceAccount()
        self.tokens = TokenIssuer(self, self.account)
        self._answers: deque[Response | str] = deque()
        self.route("POST", DEVELOPER_PATH, self._developer)
        self.route("POST", VERTEX_PATH, self._vertex)

    # -- scripting ---------------------------------------------------------------------------------------------------
    def queue_text(self, *texts: str) -> None:
        """The next answers' text (a well-formed request gets it as the model's output)."""
        with self.lock:
            self._answers.extend(texts)

    def queue_plan(self, plan: dict[str, Any]) -> None:
        self.queue_text(json.dumps(plan))

    def queue_response(self, *responses: Response) -> None:
        """Raw responses for the next well-formed requests (a safety block, an error)."""
        with self.lock:
            self._answers.extend(responses)

    def reset(self) -> None:
        """Forget requests, queued answers and pending faults (one fake shared by many tests)."""
        with self.lock:
            self.requests.clear()
            self._answers.clear()
            self._faults.clear()

    # -- inspection --------------------------------------------------------------------------------------------------
    def generate_calls(self) -> list[Request]:
        return self.calls("POST", GENERATE)

    def bodies(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.generate_calls()]

    # -- routes ------------------------------------------------------------------------------------------------------
    def _developer(self, request: Request) -> Response:
        key = request.headers.get("x-goog-api-key")
        if not key:
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            return google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        return self._generate(request)

    def _vertex(self, request: Request) -> Response:
        if not self.tokens.authorized(request):
            return TokenIssuer.unauthenticated()
        if request.params["project"] != self.account.project:
            return google_error(
                403, "PERMISSION_DENIED", f"Permission denied on resource project {request.params['project']}."
            )
        return self._generate(request)

    def _generate(self, request: Request) -> Response:
        try:
            body = request.json()
        except json.JSONDecodeError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = _check(body)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        with self.lock:
            answer = self._answers.popleft() if self._answers else None
        if self.delay_s:
            time.sleep(self.delay_s)
        if isinstance(answer, Response):
            return answer
        if answer is None:
            match = _SCRIPT.search(_first_user_text(body))
            if match is None:
                return google_error(400, "INVALID_ARGUMENT", "fake Gemini: no <script>...</script> in the prompt")
            answer = json.dumps(good_plan(match.group(1)))
        return text_response(answer, model=request.params["model"])


def _first_user_text(body: dict[str, Any]) -> str:
    first = body["contents"][0]
    return "\n".join(p["text"] for p in first.get("parts", []) if "text" in p)


def decode_bytes(data: str) -> bytes:
    """Proto JSON bytes: standard or URL-safe base64, padded or not, are all accepted (pydantic, under
    google-genai, writes URL-safe)."""
    plain = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(plain + "=" * (-len(plain) % 4), validate=True)


def field(message: dict[str, Any], name: str) -> Any:
    """A field by its JSON name or its proto name: the API's JSON parser takes both, and google-genai 3.6.1 sends
    some fields the proto way (`inlineData: {"mime_type": ...}`)."""
    if name in message:
        return message[name]
    return message.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name))


def _check(body: dict[str, Any]) -> str | None:
    """What the real API would reject (or what this fake cannot answer): None when the request is well-formed."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    roles = [c.get("role") for c in contents]
    if roles[0] != "user" or roles[-1] != "user" or any(r not in ("user", "model") for r in roles):
        return "Please ensure that multiturn requests alternate between user and model and end with a user turn."
    for c in contents:
        for part in c.get("parts", []):
            blob = field(part, "inlineData")
            if blob is None:
                continue
            mime_type = field(blob, "mimeType")
            if not str(mime_type).startswith("image/"):
                return f"Unsupported MIME type: {mime_type}"
            try:
                decode_bytes(blob.get("data", ""))
            except (binascii.Error, ValueError):
                return "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed"
    config = body.get("generationConfig") or {}
    if (config.get("responseJsonSchema") or config.get("responseSchema")) and config.get(
        "responseMimeType"
    ) != "application/json":
        return "responseMimeType must be application/json when a response schema is set"
    return None
