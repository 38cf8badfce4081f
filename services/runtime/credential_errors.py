"""A provider refusing this deployment's credentials: recognised and worded in one place, for every adapter.

A revoked service-account key, a wrong or expired ElevenLabs key, an account without the role a bucket needs: no
retry gets past any of them, and none is the client's doing. Each adapter hands what the provider answered to the
function here for it and raises what comes back: a CredentialError (a ProviderError, so the step's handler ends the
job at once with its message as the `error`, the bus never redelivers it, and before a job exists the gateway
answers 502 with it), a TransientError for an authentication service that is down (retried, 503 at the gateway), or
None when the failure is not about credentials and the adapter's own handling applies.

Every message names the provider, says what it refused and what the operator should check, and carries the
provider's own short reason; never a key, a token, a signed assertion or a signed URL (the exchanges that carry
them are not quoted)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from google.auth import exceptions as auth_exceptions

from services.runtime.errors import ProviderError, TransientError, UserFacingError
from services.runtime.logging import scrub

GOOGLE: Final = "Google Cloud"
GOOGLE_KEY_FILE: Final = "GOOGLE_APPLICATION_CREDENTIALS"
GOOGLE_ADC: Final = (
    "the application default credentials (gcloud auth application-default login, or the service account of the "
    "Google Cloud runtime)"
)
ELEVENLABS_KEY: Final = "ELEVENLABS_API_KEY"
_REASON_CHARS: Final = 300  # a provider's reason, not a whole HTML error page

# What Google's token endpoint means by the `error_description`s it answers a refused grant with.
_GRANT_MEANINGS: Final = (
    ("invalid jwt signature", "the key was revoked or deleted"),
    ("account not found", "the service account was deleted"),
    ("reasonable timeframe", "this server's clock is wrong; check that it is synchronised"),
    ("expired or revoked", "the sign-in expired or was revoked"),
    ("disabled", "the service account is disabled"),
)


# ElevenLabs also answers 401 for an account that may not go on, whatever the key: the adapter's refusal says so.
_NOT_THE_KEY: Final = frozenset({"quota_exceeded", "detected_unusual_activity"})


class CredentialError(ProviderError):
    """A provider refused the credentials configured for it: a configuration fault, the same on every try."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(scrub(message))
        self.provider = provider


def google_credentials_source(env: Mapping[str, str]) -> str:
    """What an operator checks when Google refuses the credentials loaded from `env`."""
    return GOOGLE_KEY_FILE if env.get(GOOGLE_KEY_FILE, "").strip() else GOOGLE_ADC


def google_auth_failure(exc: BaseException, source: str = GOOGLE_KEY_FILE) -> UserFacingError | None:
    """For an exception of a Google call: google_refresh_failure when it is google-auth's RefreshError, else None."""
    return google_refresh_failure(exc, source) if isinstance(exc, auth_exceptions.RefreshError) else None


def google_refresh_failure(exc: auth_exceptions.RefreshError, source: str = GOOGLE_KEY_FILE) -> UserFacingError:
    """The token endpoint refused the credentials (a CredentialError) or kept failing (a TransientError). `source`
    is google_credentials_source(env) of the settings the credentials came from."""
    reason = _grant_reason(exc)
    if exc.retryable:
        # google-auth has already retried it: the token endpoint is failing, which another delivery may not meet.
        return TransientError(f"{GOOGLE}'s token endpoint failed to issue an access token ({reason})")
    return CredentialError(GOOGLE, f"{GOOGLE} rejected the credentials ({reason}); check {source}")


def google_api_refusal(
    provider: str, code: int | None, status: str | None, message: str | None, source: str
) -> CredentialError | None:
    """A Google API's own 401: the token or key it was sent is not accepted. (A 403 says which permission or API is
    missing in Google's own words, which the adapter's refusal passes on.)"""
    if code != 401:
        return None
    said = _short(" ".join(str(p) for p in (code, status) if p) + (f": {message}" if message else ""))
    return CredentialError(provider, f"{provider} rejected the credentials ({said}); check {source}")


def elevenlabs_refusal(status: int | None, body: Any) -> CredentialError | None:
    """ElevenLabs' 401 (the key invalid or expired) and its 401/403 for a key without a permission this needs.
    A 401 for a used-up quota or a blocked account is not about the key: None."""
    code, message = _elevenlabs_detail(body)
    detail = f"{code}: {message}" if code and message else (code or message)
    said = _short(f"HTTP {status}: {detail}" if detail else f"HTTP {status}")
    if code == "missing_permissions":
        return CredentialError(
            "ElevenLabs",
            f"ElevenLabs refused the API key a permission it needs ({said}); give the key in {ELEVENLABS_KEY} the "
            "Speech to Speech permission",
        )
    if status == 401 and code not in _NOT_THE_KEY:
        return CredentialError("ElevenLabs", f"ElevenLabs rejected the API key ({said}); check {ELEVENLABS_KEY}")
    if status == 403:
        return CredentialError(
            "ElevenLabs",
            f"ElevenLabs refused access ({said}); check the permissions and plan of the key in {ELEVENLABS_KEY}",
        )
    return None


def storage_refusal(
    code: int | None, message: str, bucket: str, *, signing_as: str | None, source: str
) -> CredentialError | None:
    """Cloud Storage's 401/403, or IAM's 403 to signBlob when `signing_as` names the account a URL is signed as."""
    said = _short(f"{code}: {message}" if message else str(code))
    if signing_as is not None and code == 403:
        return CredentialError(
            "Cloud Storage",
            f"IAM denied signing download links as {signing_as} ({said}); give the account in {source} the "
            f"Service Account Token Creator role on {signing_as}, or check ADAGENT_GCS_SIGNER_EMAIL",
        )
    if code == 401:
        return CredentialError("Cloud Storage", f"Cloud Storage rejected the credentials ({said}); check {source}")
    if code == 403:
        return CredentialError(
            "Cloud Storage",
            f"Cloud Storage denied access to bucket {bucket} ({said}); check the service account's roles on the "
            "bucket (Storage Object Admin, or Storage Object Creator and Viewer)",
        )
    return None


def _grant_reason(exc: auth_exceptions.RefreshError) -> str:
    """`invalid_grant: the key was revoked or deleted` from Google's {"error", "error_description"} answer."""
    body = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
    error = str(body.get("error") or "")
    description = str(body.get("error_description") or "")
    if not error:
        first = exc.args[0] if exc.args else ""
        return _short(str(first) or type(exc).__name__)
    meaning = next((m for needle, m in _GRANT_MEANINGS if needle in description.lower()), None)
    return _short(f"{error}: {meaning or description}" if meaning or description else error)


def _elevenlabs_detail(body: Any) -> tuple[str | None, str]:
    detail = body.get("detail", body) if isinstance(body, Mapping) else body
    if isinstance(detail, Mapping):
        code = detail.get("status") or detail.get("code") or detail.get("type")
        return (str(code) if code else None), str(detail.get("message") or "")
    return None, str(detail or "")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"
