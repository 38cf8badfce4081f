"""Object storage on Google Cloud Storage: `gs://BUCKET/OBJECT` references, V4 signed URLs.

The google-cloud-storage client is synchronous; every call runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import re
import secrets
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import google.auth
import google.auth.credentials
import google.oauth2.credentials
import requests
import structlog
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request as AuthRequest
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from services.runtime.credential_errors import (
    GOOGLE_KEY_FILE,
    google_credentials_source,
    google_refresh_failure,
    storage_refusal,
)
from services.runtime.errors import ProviderError, TransientError
from services.runtime.settings import SettingsError, env_float, env_int
from services.runtime.storage.gcs_signing import IAM_CREDENTIALS_ENDPOINT, IamSigner, IamSigningCredentials

log = structlog.get_logger(__name__)
T = TypeVar("T")

MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600  # V4 signed URLs live at most 7 days
RESUMABLE_CHUNK_QUANTUM = 256 * 1024  # resumable chunks must be multiples of 256 KiB (except the last)
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
# google-cloud-storage uploads files of at most 8 MiB (`blob._MAX_MULTIPART_SIZE`) in one multipart request and larger
# ones as resumable sessions in `chunk_size` pieces: a dropped connection costs one chunk, not the whole video.
RESUMABLE_THRESHOLD = 8 * 1024 * 1024
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # storage and IAM signBlob
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}


class GcsError(ProviderError):
    """A permanent storage failure (permission, missing bucket or object): retrying will not help."""


class GcsObjectNotFound(GcsError, FileNotFoundError):
    pass


@dataclass(frozen=True)
class GcsConfig:
    bucket: str
    prefix: str = ""  # object names start with it: several deployments can share a bucket
    credentials: google.auth.credentials.Credentials | None = field(default=None, repr=False, compare=False)
    project: str | None = None  # only billing/quota attribution; object calls work without one
    endpoint: str | None = None  # JSON API base URL; None means https://storage.googleapis.com
    signed_url_endpoint: str | None = None  # host the signed URLs name; None means the JSON API endpoint
    signer_email: str | None = None  # sign as this account through IAM signBlob (credentials without a private key)
    iam_endpoint: str = IAM_CREDENTIALS_ENDPOINT
    chunk_size: int = DEFAULT_CHUNK_SIZE
    retry_initial_seconds: float = 1.0
    retry_deadline_seconds: float = 120.0
    timeout_seconds: float = 60.0  # per HTTP request
    credentials_source: str = GOOGLE_KEY_FILE  # what a refusal of the credentials tells the operator to check

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GcsConfig:
        bucket = env.get("ADAGENT_GCS_BUCKET", "").strip()
        if not bucket:
            raise SettingsError(
                "ADAGENT_STORAGE=gcs needs ADAGENT_GCS_BUCKET (the bucket for avatars, clips and videos)"
            )
        if not _BUCKET_NAME.fullmatch(bucket):
            raise SettingsError(f"ADAGENT_GCS_BUCKET is not a valid bucket name: {bucket!r}")
        emulator = env.get("STORAGE_EMULATOR_HOST", "").strip() or None
        credentials, project = _load_credentials(env, emulator)
        chunk_size = env_int(env, "ADAGENT_GCS_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)
        if chunk_size < RESUMABLE_CHUNK_QUANTUM or chunk_size % RESUMABLE_CHUNK_QUANTUM:
            raise SettingsError(
                f"ADAGENT_GCS_CHUNK_SIZE must be a multiple of {RESUMABLE_CHUNK_QUANTUM} bytes (256 KiB)"
            )
        deadline = env_float(env, "ADAGENT_GCS_RETRY_DEADLINE_SECONDS", 120.0)
        signed_host = env.get("ADAGENT_GCS_SIGNED_URL_HOST", "").strip()
        return cls(
            bucket=bucket,
            prefix=_normalize_prefix(env.get("ADAGENT_GCS_PREFIX", "")),
            credentials=credentials,
            project=env.get("GOOGLE_CLOUD_PROJECT") or project,
            endpoint=emulator,
            signed_url_endpoint=_base_url(signed_host) if signed_host else None,
            signer_email=env.get("ADAGENT_GCS_SIGNER_EMAIL", "").strip() or None,
            iam_endpoint=_base_url(env.get("ADAGENT_GCS_IAM_ENDPOINT", "").strip() or IAM_CREDENTIALS_ENDPOINT),
            chunk_size=chunk_size,
            retry_deadline_seconds=deadline,
            credentials_source=google_credentials_source(env),
        )


class GcsStorage:
    def __init__(self, config: GcsConfig, client: Any | None = None) -> None:
        self.config = config
        self._client = client if client is not None else _make_client(config)
        self._credentials: google.auth.credentials.Credentials | None = config.credentials or getattr(
            self._client, "_credentials", None
        )
        self._bucket = self._client.bucket(config.bucket)
        # Explicit, so uploads are retried on 408/429/5xx and dropped connections whatever the SDK's default (older
        # releases retried uploads only with a generation precondition). No precondition is needed: keys are fixed
        # per job and step, so an upload repeated by a retry or a redelivered message writes the same object again
        # and the last complete write wins (GCS never shows a half-written object); `if_generation_match=0` would
        # instead make a redelivery fail with 412 after a lost response and stall the job.
        self._retry: Retry = DEFAULT_RETRY.with_delay(
            initial=config.retry_initial_seconds, maximum=max(config.retry_initial_seconds, 32.0), multiplier=2.0
        ).with_timeout(config.retry_deadline_seconds)
        self._iam_signer: IamSigner | None = None

    # -- references --------------------------------------------------------------------------------------------------
    def object_name(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\n" in key or "\r" in key:
            raise ValueError(f"not a valid object key: {key!r}")
        return self.config.prefix + key

    def ref_for(self, key: str) -> str:
        return f"gs://{self.config.bucket}/{self.object_name(key)}"

    @staticmethod
    def parse_ref(ref: str) -> tuple[str, str]:
        bucket, _, name = ref.removeprefix("gs://").partition("/")
        if not ref.startswith("gs://") or not bucket or not name:
            raise ValueError(f"not a Cloud Storage object reference: {ref!r}")
        return bucket, name

    # -- ObjectStorage -----------------------------------------------------------------------------------------------
    async def put_file(self, key: str, src: Path, content_type: str) -> str:
        name = self.object_name(key)
        blob = self._bucket.blob(name, chunk_size=self.config.chunk_size)

        def upload() -> int:
            blob.upload_from_filename(
                str(src), content_type=content_type, retry=self._retry, timeout=self.config.timeout_seconds
            )
            return src.stat().st_size

        size = await self._run("upload", self.config.bucket, name, upload)
        log.info(
            "gcs.uploaded", object=f"gs://{self.config.bucket}/{name}", bytes=size, resumable=size > RESUMABLE_THRESHOLD
        )
        return f"gs://{self.config.bucket}/{name}"

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        name = self.object_name(key)
        blob = self._bucket.blob(name, chunk_size=self.config.chunk_size)
        await self._run(
            "upload",
            self.config.bucket,
            name,
            lambda: blob.upload_from_string(
                data, content_type=content_type, retry=self._retry, timeout=self.config.timeout_seconds
            ),
        )
        log.info("gcs.uploaded", object=f"gs://{self.config.bucket}/{name}", bytes=len(data))
        return f"gs://{self.config.bucket}/{name}"

    async def fetch(self, ref: str, dest_dir: Path) -> Path:
        bucket, name = self.parse_ref(ref)
        # Named after the object (ffmpeg and friends look at the extension), prefixed with a digest of the whole
        # reference so clip_000.mp4 of two jobs or two buckets never land on the same file.
        digest = hashlib.sha256(ref.encode()).hexdigest()[:12]
        dest = dest_dir / f"{digest}-{PurePosixPath(name).name}"
        # No chunk_size here: a chunked (ranged) download skips the SDK's checksum check, a single GET verifies it.
        blob = self._client.bucket(bucket).blob(name)
        await self._run("download", bucket, name, lambda: self._download(blob, dest))
        return dest

    async def signed_url(self, ref: str, ttl_seconds: int) -> str:
        if not 1 <= ttl_seconds <= MAX_SIGNED_URL_SECONDS:
            raise ValueError(f"a V4 signed URL lives 1 s to 7 days ({MAX_SIGNED_URL_SECONDS} s), not {ttl_seconds} s")
        bucket, name = self.parse_ref(ref)
        return await self._run("URL signing", bucket, name, lambda: self._sign(bucket, name, ttl_seconds))

    # -- blocking parts (worker threads) -----------------------------------------------------------------------------
    def _download(self, blob: Any, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the final name and renamed over it: a concurrent fetch of the same object never reads a
        # half-written file, and a failed download leaves nothing behind (the SDK deletes its partial file).
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            blob.download_to_filename(str(tmp), retry=self._retry, timeout=self.config.timeout_seconds)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def _sign(self, bucket: str, name: str, ttl_seconds: int) -> str:
        blob = self._client.bucket(bucket).blob(name)
        url: str = blob.generate_signed_url(
            version="v4",  # the SDK's default is still v2
            expiration=datetime.timedelta(seconds=ttl_seconds),
            method="GET",
            api_access_endpoint=self.config.signed_url_endpoint or self._client.api_endpoint,
            credentials=self._signing_credentials(),
        )
        return url

    def _signing_credentials(self) -> google.auth.credentials.Signing:
        creds = self._credentials
        wanted = self.config.signer_email
        if isinstance(creds, service_account.Credentials) and wanted in (None, creds.service_account_email):
            return creds  # a private key at hand: signed locally, no network call
        if self._iam_signer is None:
            if creds is None or isinstance(creds, google.auth.credentials.AnonymousCredentials):
                raise GcsError(
                    "signing a URL needs Google credentials: GOOGLE_APPLICATION_CREDENTIALS with a service-account "
                    "key, or credentials allowed to call IAM signBlob plus ADAGENT_GCS_SIGNER_EMAIL"
                )
            email = wanted or _service_account_email(creds)
            if not email:
                raise GcsError(
                    "these credentials have no private key to sign URLs with: set ADAGENT_GCS_SIGNER_EMAIL to the "
                    "service account to sign as through IAM signBlob"
                )
            self._iam_signer = IamSigner(
                creds, email, self.config.iam_endpoint, retry=self._retry, timeout=self.config.timeout_seconds
            )
        return IamSigningCredentials(self._iam_signer)

    # -- errors ------------------------------------------------------------------------------------------------------
    async def _run(self, action: str, bucket: str, name: str, call: Callable[[], T]) -> T:
        where = f"gs://{bucket}/{name}"
        try:
            return await asyncio.to_thread(call)
        except api_exceptions.RetryError as exc:
            raise TransientError(f"Cloud Storage {action} of {where} kept failing: {_reason(exc.cause)}") from exc
        except api_exceptions.GoogleAPICallError as exc:
            message = f"Cloud Storage {action} of {where} failed: {exc.code} {_provider_message(exc)}"
            if exc.code in _RETRYABLE_STATUS:
                raise TransientError(message) from exc
            if exc.code == 404 and action == "download":
                raise GcsObjectNotFound(message) from exc
            # Only signBlob answers a signing with an HTTP error (a key at hand signs locally).
            signer = self._iam_signer.email if self._iam_signer is not None and action == "URL signing" else None
            refused = storage_refusal(
                exc.code, _provider_message(exc), bucket, signing_as=signer, source=self.config.credentials_source
            )
            raise (refused or GcsError(message)) from exc
        except (requests.ConnectionError, requests.Timeout, DataCorruption) as exc:
            raise TransientError(f"Cloud Storage {action} of {where} failed: {_reason(exc)}") from exc
        except auth_exceptions.RefreshError as exc:
            raise google_refresh_failure(exc, self.config.credentials_source) from exc
        except auth_exceptions.TransportError as exc:
            raise TransientError(f"Cloud Storage {action} of {where}: {_reason(exc)}") from exc


# -- helpers -----------------------------------------------------------------------------------------------------------
def _make_client(config: GcsConfig) -> Any:
    credentials = config.credentials
    if credentials is None and config.endpoint:
        # An emulator, anonymous as the SDK itself makes it.
        credentials = google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]
    options = {"api_endpoint": config.endpoint} if config.endpoint else None
    # An explicit project (None included) keeps the client from looking up a default one through ADC.
    return storage.Client(project=config.project, credentials=credentials, client_options=options)


def _load_credentials(
    env: Mapping[str, str], emulator: str | None
) -> tuple[google.auth.credentials.Credentials | None, str | None]:
    key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    if key_file:
        if not Path(key_file).is_file():
            raise SettingsError(f"GOOGLE_APPLICATION_CREDENTIALS names {key_file!r}, which is not a readable file")
        try:
            return _credentials_from_file(Path(key_file))
        except (auth_exceptions.DefaultCredentialsError, ValueError, KeyError) as exc:
            # The reason only (a missing field, bad JSON), never the file's content.
            raise SettingsError(f"GOOGLE_APPLICATION_CREDENTIALS ({key_file}) is not usable: {_reason(exc)}") from None
    if emulator:
        return None, None  # the emulator takes anonymous requests; no key, so no signed URLs without a signer
    try:
        creds, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except auth_exceptions.DefaultCredentialsError:
        raise SettingsError(
            "ADAGENT_STORAGE=gcs needs Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
            "key file, or provide application default credentials (gcloud auth application-default login, or the "
            "service account of a Google Cloud runtime)"
        ) from None
    return creds, project


def _credentials_from_file(path: Path) -> tuple[google.auth.credentials.Credentials, str | None]:
    info = json.loads(path.read_text())
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        sa = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[CLOUD_PLATFORM_SCOPE]
        )
        return sa, info.get("project_id")
    if kind == "authorized_user":
        user = google.oauth2.credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
            info, scopes=[CLOUD_PLATFORM_SCOPE]
        )
        return user, info.get("quota_project_id")
    # Workload identity federation, impersonation...: google-auth's generic loader handles them. It warns against
    # loading configurations from untrusted sources; this one comes from the operator's own environment, the same
    # trust google.auth.default() gives it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = google.auth.load_credentials_from_dict(info, scopes=[CLOUD_PLATFORM_SCOPE])  # type: ignore[no-untyped-call]
    creds: google.auth.credentials.Credentials = loaded[0]
    project: str | None = loaded[1]
    return creds, project


def _service_account_email(creds: google.auth.credentials.Credentials) -> str | None:
    email = getattr(creds, "service_account_email", None)
    if email == "default" and hasattr(creds, "refresh"):
        # Compute Engine credentials learn their account's address from the metadata server on first refresh.
        creds.refresh(AuthRequest())  # type: ignore[no-untyped-call]
        email = getattr(creds, "service_account_email", None)
    return email if isinstance(email, str) and "@" in email else None


def _provider_message(exc: api_exceptions.GoogleAPICallError) -> str:
    """Google's own reason. The SDK's exception text glues the method, URL, raw body and an internal note together;
    the JSON body's `error.message` is what a person can act on."""
    message = _error_message(getattr(exc, "response", None))
    if message:
        return message
    return exc.message.split(": ", 2)[-1] if exc.message else type(exc).__name__


def _error_message(response: Any) -> str | None:
    try:
        error = json.loads(getattr(response, "text", "") or "{}").get("error", {})
    except (ValueError, AttributeError):
        return None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message) if message else None


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no reason given"
    if isinstance(exc, auth_exceptions.TransportError):
        # An access token could not be fetched; the cause (a connection refused, a timeout) says why.
        cause = exc.__cause__ or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
        return f"Google's token endpoint could not be reached ({type(cause or exc).__name__})"
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return f"{exc.code} {_provider_message(exc)}"
    response = getattr(exc, "response", None)  # the SDK's media layer (InvalidResponse) keeps the HTTP response
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return f"{status} {_error_message(response) or getattr(response, 'reason', '')}".strip()
    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else type(exc).__name__
    return str(first)


def _normalize_prefix(prefix: str) -> str:
    prefix = prefix.strip().strip("/")
    if not prefix:
        return ""
    if any(p in ("", ".", "..") for p in prefix.split("/")):
        raise SettingsError(f"ADAGENT_GCS_PREFIX is not a valid object-name prefix: {prefix!r}")
    return prefix + "/"


def _base_url(value: str) -> str:
    return (value if "://" in value else f"https://{value}").rstrip("/")
