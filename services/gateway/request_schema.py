"""The create bodies' JSON Schema, built from the rules services.gateway.validation enforces, for this gateway's
settings (the script's length limit, the voices of the provider in use, whether webhooks may reach private hosts).

Whatever the schema allows, the server takes (tests/gateway/test_schema_positive.py sends what schemathesis draws
from it), so a client that validates against the document never sends what the server refuses; what no schema can
say (that the base64 payload decodes to a picture of the allowed size) is in the descriptions. The routes read the
raw body, so Litestar cannot infer any of this: the bodies are components, which the two create routes reference.
"""

from __future__ import annotations

import unicodedata

from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIType, Reference, RequestBody, Schema

from contracts.formats import ASPECT_RATIOS, RESOLUTIONS
from contracts.sse import SSE_EVENT_NAMES
from services.gateway.avatar import ACCEPTED, MIN_SIDE
from services.gateway.plain_text import (
    TABS_AND_LINE_BREAKS,
    char_class,
    is_space_or_control,
    no_control_pattern,
    no_words_pattern,
)
from services.gateway.validation import ELEVENLABS_VOICE_ID, MAX_NAME_CHARS, MAX_URL_CHARS, PRIORITIES
from services.renderer.voices import DEFAULT_VOICE_ID, voice_ids
from services.runtime.settings import Settings

STREAM_BODY = "StreamAdRequest"
CREATE_BODY = "CreateAdRequest"

# A valid 16x16 PNG, the smallest avatar the API takes: "Try it out" with it makes a real (tiny) ad.
EXAMPLE_AVATAR = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGklEQVR42mP8sKWCgRTAxEAiGNUwqmHoaAAA"
    "pmoCPACU6wkAAAAASUVORK5CYII="
)
EXAMPLE_SCRIPT = "Meet Glow, the serum that works while you sleep. Wake up radiant!"

# The form services.gateway.avatar reads, in ASCII: an image media type (or none), parameters, base64 with line
# breaks allowed. The prefix is at least 13 characters (`data:;base64,`).
DATA_URI_PATTERN = (
    r"^[\t\n\r ]*data:(image/[A-Za-z0-9_.+-]+)?(;[A-Za-z0-9_.+-]+=[A-Za-z0-9_.+-]+)*;base64,[A-Za-z0-9+/=\t\n\r ]*$"
)
_SHORTEST_PREFIX = len("data:;base64,")

# A webhook URL as the gateway takes it (validation._webhook_url): http(s), a host, a port from 1 to 65535, and no
# whitespace or control character anywhere. The public form is a DNS name of two labels or more ending in letters,
# which is never an IP literal in any spelling, nor a single label (an internal host); lower case, as hosts compare.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
# Names that resolve only inside a network (public_address._INTERNAL_SUFFIXES).
_INTERNAL_NAME = r"^https?://[^/?#]*\.(?:localhost|local|internal|home\.arpa)(?:[:/?#]|$)"


def _url_pattern(host: str) -> str:
    return rf"^https?://{host}{_PORT}(?:[/?#][^{char_class(is_space_or_control)}]*)?$"


def _string(description: str, **kwargs: object) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **kwargs)  # type: ignore[arg-type]


def _or_null(schema: Schema, default: object) -> Schema:
    """An optional field: null (or leaving it out) means the default."""
    return Schema(
        one_of=[schema, Schema(type=OpenAPIType.NULL)],
        description=f"{schema.description} Null or left out: {default}.",
        default=default,
    )


def _control_rule(allowed: str) -> str:
    if not allowed:
        return "No control characters (line breaks and tabs included)."
    names = ", ".join(unicodedata.name(ch, f"U+{ord(ch):04X}") for ch in allowed)
    return f"No control characters but tab, line feed and carriage return ({names})."


def _voice_id(settings: Settings) -> Schema:
    if settings.voice == "elevenlabs":
        return _or_null(
            _string(
                "An ElevenLabs voice id (20 letters and digits); whether the voice exists, ElevenLabs says at step 4.",
                pattern=f"^{ELEVENLABS_VOICE_ID.pattern}$",
            ),
            "the configured voice (`ADAGENT_ELEVENLABS_VOICE_ID`)",
        )
    if settings.renderer == "veo":
        return Schema(
            type=OpenAPIType.NULL,
            description="Null or left out: Veo clips speak in Veo's own voice, which the local voice step keeps (a "
            "voice can be chosen with `ADAGENT_VOICE=elevenlabs` on the gateway).",
        )
    return _or_null(_string("A voice installed on this gateway.", enum=list(voice_ids())), f"`{DEFAULT_VOICE_ID}`")


def _webhook_url(settings: Settings) -> Schema:
    if settings.webhook_allow_private:
        url = _string(
            "An absolute http(s) URL that receives the job's events as signed webhooks (Standard Webhooks; the "
            "secret is at `GET /api/auth/webhook-secret`). This gateway allows receivers inside its network.",
            pattern=_url_pattern(r"[A-Za-z0-9.-]+"),
            max_length=MAX_URL_CHARS,
        )
    else:
        url = Schema(
            type=OpenAPIType.STRING,
            description="An absolute http(s) URL that receives the job's events as signed webhooks (Standard "
            "Webhooks; the secret is at `GET /api/auth/webhook-secret`). It must reach a public internet address: "
            "a loopback, private or link-local host gets a 422, and a name that resolves to one is refused at "
            "delivery (unless the operator allows private receivers).",
            pattern=_url_pattern(rf"(?:{_LABEL}\.)+[a-z]{{2,63}}"),
            max_length=MAX_URL_CHARS,
            schema_not=Schema(pattern=_INTERNAL_NAME),
        )
    return _or_null(url, "none")


def create_body_schema(settings: Settings, *, with_job_fields: bool) -> Schema:
    """The seed's StreamAdRequest (contracts.request), plus the additive fields `/create` takes."""
    limit = settings.max_script_chars
    max_bytes = settings.max_image_bytes
    properties: dict[str, Schema] = {
        "script": Schema(
            type=OpenAPIType.STRING,
            description=f"What the character says: at least one letter or digit (in any script), at most {limit} "
            f"characters (`ADAGENT_MAX_SCRIPT_CHARS`). {_control_rule(TABS_AND_LINE_BREAKS)}",
            min_length=1,
            max_length=limit,
            pattern=no_control_pattern(TABS_AND_LINE_BREAKS),
            schema_not=Schema(pattern=no_words_pattern()),
            examples=[EXAMPLE_SCRIPT],
        ),
        "character_image": _string(
            f"The avatar, as a base64 data URI (`data:image/png;base64,...`): {ACCEPTED} (an animation: its first "
            f"frame), at least {MIN_SIDE}x{MIN_SIDE} pixels, at most {max_bytes} bytes (`ADAGENT_MAX_IMAGE_BYTES`) "
            f"and {settings.max_image_pixels} pixels (`ADAGENT_MAX_IMAGE_PIXELS`): larger answers 413. Transparent "
            "areas are laid on white.",
            pattern=DATA_URI_PATTERN,
            # Base64 takes 4 characters for 3 bytes: within this length the payload is never over the byte limit.
            max_length=_SHORTEST_PREFIX + 4 * (max_bytes // 3),
        ),
        "character_name": _or_null(
            _string(
                f"The character's name, at most {MAX_NAME_CHARS} characters. {_control_rule('')}",
                max_length=MAX_NAME_CHARS,
                pattern=no_control_pattern(),
            ),
            "character",
        ),
        "voice_id": _voice_id(settings),
        "aspect_ratio": _or_null(_string("The video's aspect ratio.", enum=list(ASPECT_RATIOS)), "16:9"),
        "resolution": _or_null(_string("The video's short side: 720 or 1080 pixels.", enum=list(RESOLUTIONS)), "720p"),
    }
    if with_job_fields:
        properties |= {
            "priority": _or_null(
                _string("Queued jobs start by priority, then first come first served.", enum=list(PRIORITIES)),
                "normal",
            ),
            "webhook_url": _webhook_url(settings),
            "webhook_events": Schema(
                type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
                description="The events to deliver to `webhook_url`, each once. Null or left out: all of them.",
                items=Schema(type=OpenAPIType.STRING, enum=list(SSE_EVENT_NAMES)),
                min_items=1,
            ),
        }
    return Schema(
        title=CREATE_BODY if with_job_fields else STREAM_BODY,
        type=OpenAPIType.OBJECT,
        required=["script", "character_image"],
        properties=dict(properties),
        description="Unknown fields are ignored." + ("" if with_job_fields else " (`/create` takes a few more.)"),
    )


def _request_body(settings: Settings, *, with_job_fields: bool) -> RequestBody:
    minimal = {"script": EXAMPLE_SCRIPT, "character_image": EXAMPLE_AVATAR}
    full: dict[str, object] = {
        **minimal,
        "character_name": "Eileen",
        "voice_id": None,
        "aspect_ratio": "9:16",
        "resolution": "720p",
    }
    examples: dict[str, Example | Reference] = {
        "minimal": Example(summary="The two required fields", value=minimal),
        "full": Example(summary="Every field of the seed's request", value=full),
    }
    if with_job_fields:
        examples["job_options"] = Example(
            summary="With a priority and a webhook for two events",
            value={
                **full,
                "priority": "high",
                "webhook_url": "https://hooks.example.com/adagent",
                "webhook_events": ["complete", "error"],
            },
        )
    schema = create_body_schema(settings, with_job_fields=with_job_fields)
    return RequestBody(
        required=True,
        description="A JSON object (any or no `Content-Type`).",
        content={"application/json": OpenAPIMediaType(schema=schema, examples=examples)},
    )


def request_bodies(settings: Settings) -> dict[str, RequestBody | Reference]:
    """The `components.requestBodies` of the document."""
    return {
        STREAM_BODY: _request_body(settings, with_job_fields=False),
        CREATE_BODY: _request_body(settings, with_job_fields=True),
    }


def body_ref(name: str) -> Reference:
    return Reference(ref=f"#/components/requestBodies/{name}")
