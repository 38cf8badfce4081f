"""Check a create-stream body field by field, and decode the avatar, before a job exists."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

from contracts.formats import ASPECT_RATIOS, RESOLUTIONS
from contracts.request import StreamAdRequest
from contracts.sse import SSE_EVENT_NAMES
from services.gateway.avatar import decode_avatar
from services.gateway.errors import RequestError
from services.gateway.json_body import json_object
from services.gateway.plain_text import TABS_AND_LINE_BREAKS, check_plain_text, has_words
from services.gateway.public_address import non_public_reason
from services.renderer.voices import voice_ids as local_voice_ids
from services.runtime.settings import Settings

PRIORITIES = ("low", "normal", "high")
ELEVENLABS_VOICE_ID = re.compile(r"[A-Za-z0-9]{20}")
MAX_NAME_CHARS = 100
MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class ValidRequest:
    request: StreamAdRequest
    avatar_png: bytes  # what services.gateway.avatar makes: 8-bit sRGB PNG, upright, no alpha, no metadata
    width: int
    height: int
    priority: str = "normal"
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    body_sha256: str = ""


def parse_request(
    body: bytes, settings: Settings, valid_voice_ids: Sequence[str] | None = None, *, job_fields: bool = True
) -> ValidRequest:
    """`valid_voice_ids`: the ids `voice_id` may take; None means the local voices installed here (the voice provider
    in use). A missing or null `voice_id` is always valid: the default voice. `job_fields`: read `/create`'s
    additive fields (priority, webhook); without, they are unknown fields, ignored as the seed's endpoint does."""
    raw = json_object(body)
    script = _string(raw, "script", required=True)
    check_plain_text("script", script, allowed=TABS_AND_LINE_BREAKS)
    if not script.strip():
        raise RequestError("script", "must not be empty")
    if not has_words(script):
        raise RequestError("script", "has no words to speak")
    if len(script) > settings.max_script_chars:
        raise RequestError("script", f"is {len(script)} characters; the limit is {settings.max_script_chars}")
    image = _string(raw, "character_image", required=True)
    name = _string(raw, "character_name") if raw.get("character_name") is not None else "character"
    if len(name) > MAX_NAME_CHARS:
        raise RequestError("character_name", f"is longer than {MAX_NAME_CHARS} characters")
    check_plain_text("character_name", name)
    voice_id = _request_voice_id(raw, settings, valid_voice_ids)
    aspect = _choice(raw, "aspect_ratio", ASPECT_RATIOS, "16:9")
    resolution = _choice(raw, "resolution", RESOLUTIONS, "720p")
    priority = _choice(raw, "priority", PRIORITIES, "normal") if job_fields else "normal"
    webhook_url = _webhook_url(raw, allow_private=settings.webhook_allow_private) if job_fields else None
    webhook_events = _webhook_events(raw) if job_fields else None
    avatar = decode_avatar(image, settings)
    request = StreamAdRequest(
        script=script,
        character_image=image,
        character_name=name.strip() or "character",
        voice_id=voice_id,
        aspect_ratio=aspect,  # type: ignore[arg-type]
        resolution=resolution,  # type: ignore[arg-type]
    )
    digest = hashlib.sha256(msgspec.json.encode(raw, order="sorted")).hexdigest()
    return ValidRequest(request, avatar.png, avatar.width, avatar.height, priority, webhook_url, webhook_events, digest)


def _request_voice_id(raw: dict[str, Any], settings: Settings, valid: Sequence[str] | None) -> str | None:
    if isinstance(raw.get("voice_id"), str):
        check_plain_text("voice_id", raw["voice_id"])
    if settings.voice == "elevenlabs":
        return _elevenlabs_voice_id(raw)
    if settings.renderer == "veo" and raw.get("voice_id") is not None:
        # Veo clips are generated with their speech, and the local voice step only evens out the sound they have:
        # a local voice would be accepted and never heard.
        value = _string(raw, "voice_id")
        raise RequestError(
            "voice_id",
            f"{value!r} cannot be used: Veo clips speak in Veo's own voice, and the local voice step keeps it; "
            "leave voice_id null, or choose a voice with ADAGENT_VOICE=elevenlabs on the gateway (voice_id is then "
            "an ElevenLabs voice id)",
        )
    return _voice_id(raw, valid)


def _voice_id(raw: dict[str, Any], valid: Sequence[str] | None) -> str | None:
    if raw.get("voice_id") is None:
        return None  # the seed's default ("Heather Bryant" at ElevenLabs): the default local voice
    value = _string(raw, "voice_id")
    if valid is None:
        valid = local_voice_ids()  # lists the installed voices; loads no model
    if value not in valid:
        raise RequestError("voice_id", f"{value!r} is not a voice here; valid: {', '.join(valid)} (or null)")
    return value


def _elevenlabs_voice_id(raw: dict[str, Any]) -> str | None:
    """With ElevenLabs as the voice provider `voice_id` is theirs, as in the seed. The gateway checks the form their
    ids take (20 letters and digits) and leaves whether the voice exists to ElevenLabs, which answers at step 4 with
    an `error` naming the voice; listing an account's voices here would put a provider call in front of every job."""
    if raw.get("voice_id") is None:
        return None  # the configured default voice (ADAGENT_ELEVENLABS_VOICE_ID)
    value = _string(raw, "voice_id")
    if not ELEVENLABS_VOICE_ID.fullmatch(value):
        raise RequestError("voice_id", f"{value!r} is not an ElevenLabs voice id (20 letters and digits) or null")
    return value


def _webhook_url(raw: dict[str, Any], *, allow_private: bool) -> str | None:
    value = raw.get("webhook_url")
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError("webhook_url", f"must be a string, got {type(value).__name__}")
    # Before parsing: urlsplit drops tabs and line breaks silently, and the URL is kept as sent.
    check_plain_text("webhook_url", value)
    if any(ch.isspace() for ch in value):
        raise RequestError("webhook_url", "must not contain spaces (a URL writes them as %20)")
    try:
        parts = urlsplit(value)
        port = parts.port  # parsed on access
    except ValueError as exc:  # an unclosed or invalid [IPv6] host, a port out of range
        raise RequestError("webhook_url", f"is not a valid URL ({exc})") from None
    if port == 0:
        raise RequestError("webhook_url", "is not a valid URL (port 0)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestError("webhook_url", "must be an absolute http:// or https:// URL")
    if len(value) > MAX_URL_CHARS:
        raise RequestError("webhook_url", f"is longer than {MAX_URL_CHARS} characters")
    # An early, clear answer for hosts that are internal by their form; a name is checked against what it
    # resolves to at each delivery (services/gateway/public_address.py), as DNS can change after this.
    reason = None if allow_private else non_public_reason(parts.hostname)
    if reason is not None:
        raise RequestError(
            "webhook_url",
            f"must reach a public internet address; {parts.hostname} is {reason} (the gateway's operator can "
            "allow receivers inside its network with ADAGENT_WEBHOOK_ALLOW_PRIVATE=true)",
        )
    return value


def _webhook_events(raw: dict[str, Any]) -> list[str] | None:
    value = raw.get("webhook_events")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise RequestError("webhook_events", "must be a non-empty list of event names")
    unknown = sorted(set(value) - set(SSE_EVENT_NAMES))
    if unknown:
        raise RequestError("webhook_events", f"unknown {', '.join(unknown)}; valid: {', '.join(SSE_EVENT_NAMES)}")
    return list(dict.fromkeys(value))


def _string(raw: dict[str, Any], field: str, *, required: bool = False) -> str:
    if field not in raw or raw[field] is None:
        if required:
            raise RequestError(field, "is required")
        return ""
    value = raw[field]
    if not isinstance(value, str):
        raise RequestError(field, f"must be a string, got {type(value).__name__}")
    return value


def _choice(raw: dict[str, Any], field: str, allowed: tuple[str, ...], default: str) -> str:
    value = raw.get(field)
    if value is None:
        return default
    if value not in allowed:
        raise RequestError(field, f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)
