"""A fake Google Cloud Storage for tests: the JSON API the google-cloud-storage SDK speaks (media, multipart and
resumable uploads, object metadata, media downloads), the IAM Credentials signBlob call, and GETs of V4 signed URLs on
the XML API path (`/BUCKET/OBJECT?X-Goog-Algorithm=...`), verified the way Cloud Storage verifies them.

Objects live in memory. `uploads` counts finished uploads by `uploadType` and `sessions` keeps every resumable session
with the size of each chunk it received, so a test can say "this upload was resumable, in 3 chunks"."""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

import google_crc32c
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from tests.fakes.google_auth import ServiceAccount, TokenIssuer
from tests.fakes.server import FakeServer, Request, Response, google_error

V4_ALGORITHM = "GOOG4-RSA-SHA256"
MAX_EXPIRES = 7 * 24 * 3600
CHUNK_QUANTUM = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes (?:(?P<start>\d+)-(?P<end>\d+)|\*)/(?P<total>\d+|\*)")


# -- V4 signed URLs ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a signed URL: truthy when valid; otherwise Google's XML error code, a reason and the
    HTTP status Cloud Storage answers with."""

    ok: bool
    code: str = ""
    reason: str = ""
    status: int = 200
    email: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _refuse(status: int, code: str, reason: str) -> Verdict:
    return Verdict(False, code, reason, status)


def _quote(value: str) -> str:
    return quote(value, safe="~")  # RFC 3986 unreserved characters stay, everything else is %XX


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(sorted(f"{_quote(k)}={_quote(v)}" for k, v in pairs if k != "X-Goog-Signature"))


def check_v4_signature(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    public_key: RSAPublicKey | None,
    now: float | None = None,
    keys: dict[str, RSAPublicKey] | None = None,
) -> Verdict:
    """Rebuild the canonical request and string to sign (cloud.google.com/storage/docs/authentication/signatures) and
    check the RSA-SHA256 signature. `path` is the request path as sent (percent-encoded), `headers` lower-case.
    The key is `public_key`, or looked up by the credential's e-mail in `keys`."""
    params = dict(query)
    for name in ("X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders"):
        if name not in params:
            return _refuse(400, "AuthorizationQueryParametersError", f"Query-string authentication requires {name}.")
    if "X-Goog-Signature" not in params:
        return _refuse(
            400, "AuthorizationQueryParametersError", "Query-string authentication requires X-Goog-Signature."
        )
    if params["X-Goog-Algorithm"] != V4_ALGORITHM:
        return _refuse(400, "InvalidArgument", f"Unsupported algorithm {params['X-Goog-Algorithm']!r}.")
    stamp = params["X-Goog-Date"]
    try:
        signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC).timestamp()
        expires = int(params["X-Goog-Expires"])
    except ValueError:
        return _refuse(400, "MalformedSecurityHeader", "Invalid X-Goog-Date or X-Goog-Expires.")
    if not 1 <= expires <= MAX_EXPIRES:
        return _refuse(400, "MalformedSecurityHeader", f"X-Goog-Expires must be 1 to {MAX_EXPIRES} seconds.")
    email, _, scope = params["X-Goog-Credential"].partition("/")
    if scope != f"{stamp[:8]}/auto/storage/goog4_request":
        return _refuse(400, "MalformedSecurityHeader", f"Invalid credential scope {scope!r}.")
    current = time.time() if now is None else now
    if current > signed_at + expires:
        expired_at = datetime.datetime.fromtimestamp(signed_at + expires, datetime.UTC).isoformat()
        return _refuse(
            400, "ExpiredToken", f"The provided token has expired. Request signature expired at: {expired_at}"
        )
    if current < signed_at - 60:
        return _refuse(400, "ExpiredToken", "Request is not yet valid (X-Goog-Date is in the future).")
    key = public_key if public_key is not None else (keys or {}).get(email)
    if key is None:
        return _refuse(403, "AccessDenied", f"Unknown signer {email!r}.")
    signed_headers = params["X-Goog-SignedHeaders"].split(";")
    if "host" not in signed_headers:
        return _refuse(400, "AuthorizationQueryParametersError", "The host header must be signed.")
    canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed_headers)
    payload = headers.get("x-goog-content-sha256", "UNSIGNED-PAYLOAD")
    canonical_request = "\n".join(
        [method, path, canonical_query(query), canonical_headers, ";".join(signed_headers), payload]
    )
    string_to_sign = "\n".join([V4_ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    try:
        signature = bytes.fromhex(params["X-Goog-Signature"])
        key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return _refuse(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your Google secret key and signing method.",
        )
    return Verdict(True, email=email)


def verify_v4_signed_url(url: str, public_key: RSAPublicKey, now: float | None = None, method: str = "GET") -> Verdict:
    """Is `url` a valid, unexpired V4 signed URL made with the private half of `public_key`? (The Host header the
    signature covers is the URL's own host, as a client requesting it sends.) Truthy if so, else a Verdict whose
    `code` is Google's error code and `reason` says why."""
    split = urlsplit(url)
    query = parse_qsl(split.query, keep_blank_values=True)
    return check_v4_signature(method, split.path, query, {"host": split.netloc}, public_key, now)


def xml_error(verdict: Verdict) -> Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{escape(verdict.code)}</Code><Message>{escape(verdict.reason)}</Message></Error>"
    )
    return Response(verdict.status, body.encode(), {"Content-Type": "application/xml; charset=UTF-8"})


# -- objects -----------------------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def crc32c_b64(data: bytes) -> str:
    return _b64(google_crc32c.value(data).to_bytes(4, "big"))


def md5_b64(data: bytes) -> str:
    return _b64(hashlib.md5(data).digest())


@dataclass
class StoredObject:
    bucket: str
    name: str
    data: bytes
    content_type: str
    generation: int
    upload_type: str
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z"))

    def resource(self, base_url: str) -> dict[str, Any]:
        quoted = quote(self.name, safe="")
        return {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{self.generation}",
            "selfLink": f"{base_url}/storage/v1/b/{self.bucket}/o/{quoted}",
            "mediaLink": f"{base_url}/download/storage/v1/b/{self.bucket}/o/{quoted}"
            f"?generation={self.generation}&alt=media",
            "name": self.name,
            "bucket": self.bucket,
            "generation": str(self.generation),
            "metageneration": "1",
            "contentType": self.content_type,
            "storageClass": "STANDARD",
            "size": str(len(self.data)),
            "md5Hash": md5_b64(self.data),
            "crc32c": crc32c_b64(self.data),
            "etag": _b64(f"{self.generation}".encode()),
            "timeCreated": self.created,
            "updated": self.created,
            "timeStorageClassUpdated": self.created,
        }


@dataclass
class UploadSession:
    id: str
    bucket: str
    name: str
    content_type: str
    total: int | None
    data: bytearray = field(default_factory=bytearray)
    chunks: list[int] = field(default_factory=list)  # bytes received per PUT that carried data
    result: StoredObject | None = None


class FakeGcs(FakeServer):
    """Cloud Storage and IAM Credentials on one local server. JSON API calls need a Bearer token issued by this
    server's `/token` (or a self-signed JWT of `account`), unless `require_auth` is False (emulator style)."""

    def __init__(self, account: ServiceAccount | None = None, buckets: tuple[str, ...] = ("adagent-test",)) -> None:
        super().__init__()
        self.account = account or ServiceAccount()
        self.accounts: dict[str, ServiceAccount] = {self.account.email: self.account}
        self.tokens = TokenIssuer(self, self.account)
        self.buckets = set(buckets)
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.sessions: dict[str, UploadSession] = {}
        self.uploads: Counter[str] = Counter()
        self.require_auth = True
        self.clock: float | None = None  # seconds since the epoch for signed-URL checks; None = real time
        self.latency = 0.0  # seconds each upload request takes, to show a slow provider does not block the caller
        self.denied: set[str] = set()  # IAM permissions the account lost on every bucket, e.g. storage.objects.create
        self._generations = itertools.count(1_700_000_000_000_001)
        self.route("POST", r"/upload/storage/v1/b/(?P<bucket>[^/]+)/o", self._upload)
        self.route("PUT", r"/upload/storage/v1/b/(?P<bucket>[^/]+)/o", self._resumable_chunk)
        self.route("GET", r"/(?:download/)?storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)", self._get_object)
        self.route("POST", r"/v1/projects/-/serviceAccounts/(?P<email>[^/:]+):signBlob", self._sign_blob)
        self.route("GET", r"/(?P<bucket>[a-z0-9][a-z0-9._-]*)/(?P<object>.+)", self._xml_get)

    # -- helpers for tests -------------------------------------------------------------------------------------------
    def add_account(self, account: ServiceAccount) -> None:
        self.accounts[account.email] = account

    def deny(self, *permissions: str) -> None:
        """Take `permissions` away from the account (a role removed from it on the bucket): those calls answer 403
        the way the JSON API does."""
        with self.lock:
            self.denied.update(permissions)

    def key_file(self, path: Path, account: ServiceAccount | None = None) -> Path:
        """A service-account JSON key whose token_uri is this server."""
        return (account or self.account).write_key_file(path, self.tokens.token_uri(self))

    def put_object(self, bucket: str, name: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._store(bucket, name, data, content_type, "seeded")

    def object_bytes(self, bucket: str, name: str) -> bytes:
        with self.lock:
            return self.objects[(bucket, name)].data

    def resumable_sessions(self, name: str | None = None) -> list[UploadSession]:
        with self.lock:
            return [s for s in self.sessions.values() if name is None or s.name == name]

    # -- JSON API ----------------------------------------------------------------------------------------------------
    def _denied(self, request: Request, permission: str) -> Response | None:
        if self.require_auth and not self.tokens.authorized(request):
            return self.tokens.unauthenticated()
        if request.params.get("bucket") not in self.buckets:
            return _json_error(404, "The specified bucket does not exist.", "notFound")
        with self.lock:
            lost = permission in self.denied
        if lost:
            message = (
                f"{self.account.email} does not have {permission} access to the Google Cloud Storage object. "
                f"Permission '{permission}' denied on resource (or it may not exist)."
            )
            return _json_error(403, message, "forbidden")
        return None

    def _store(self, bucket: str, name: str, data: bytes, content_type: str, upload_type: str) -> StoredObject:
        with self.lock:
            obj = StoredObject(bucket, name, bytes(data), content_type, next(self._generations), upload_type)
            self.objects[(bucket, name)] = obj
            if upload_type != "seeded":
                self.uploads[upload_type] += 1
            return obj

    def _upload(self, request: Request) -> Response:
        time.sleep(self.latency)
        denied = self._denied(request, "storage.objects.create")
        if denied:
            return denied
        bucket = request.params["bucket"]
        kind = request.arg("uploadType")
        if kind == "media":
            name = request.arg("name")
            if not name:
                return _json_error(400, "Required parameter: name", "required")
            content_type = request.headers.get("content-type", "application/octet-stream")
            return self._finish(bucket, name, request.body, content_type, "media", {})
        if kind == "multipart":
            try:
                metadata, content_type, data = _parse_multipart(request)
            except ValueError as exc:
                return _json_error(400, f"Invalid multipart request: {exc}", "invalid")
            name = metadata.get("name") or request.arg("name")
            if not name:
                return _json_error(400, "Required parameter: name", "required")
            return self._finish(bucket, name, data, metadata.get("contentType") or content_type, "multipart", metadata)
        if kind == "resumable":
            metadata = json.loads(request.body or b"{}")
            name = metadata.get("name") or request.arg("name")
            if not name:
                return _json_error(400, "Required parameter: name", "required")
            length = request.headers.get("x-upload-content-length")
            session = UploadSession(
                id=secrets.token_urlsafe(16),
                bucket=bucket,
                name=name,
                content_type=metadata.get("contentType")
                or request.headers.get("x-upload-content-type", "application/octet-stream"),
                total=int(length) if length else None,
            )
            with self.lock:
                self.sessions[session.id] = session
            location = f"{self.url}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={session.id}"
            return Response(200, b"", {"Location": location})
        return _json_error(400, f"Unsupported uploadType {kind!r}", "invalid")

    def _finish(
        self, bucket: str, name: str, data: bytes, content_type: str, kind: str, metadata: dict[str, Any]
    ) -> Response:
        for key, digest in (("md5Hash", md5_b64), ("crc32c", crc32c_b64)):
            if key in metadata and metadata[key] != digest(data):
                return _json_error(400, f"Provided {key} doesn't match calculated {key}.", "invalid")
        obj = self._store(bucket, name, data, content_type, kind)
        return Response(200, obj.resource(self.url))

    def _resumable_chunk(self, request: Request) -> Response:
        # Session URIs are capabilities: Cloud Storage accepts chunks without an Authorization header.
        with self.lock:
            session = self.sessions.get(request.arg("upload_id") or "")
        if session is None:
            return _json_error(404, "No such upload session.", "notFound")
        if session.result is not None:
            return Response(200, session.result.resource(self.url))
        match = _CONTENT_RANGE.fullmatch(request.headers.get("content-range", "").strip())
        if not match:
            return _json_error(400, "Missing or malformed Content-Range.", "invalid")
        if match["total"] != "*":
            session.total = int(match["total"])
        if match["start"] is not None:
            start, end = int(match["start"]), int(match["end"])
            if end - start + 1 != len(request.body):
                return _json_error(400, "Content-Range does not match the body's length.", "invalid")
            if start > len(session.data):
                return _json_error(400, "Chunk starts after the bytes received so far.", "invalid")
            final = session.total is not None and end + 1 == session.total
            if not final and len(request.body) % CHUNK_QUANTUM:
                return _json_error(400, "Chunks except the last must be a multiple of 256 KiB.", "invalid")
            session.data += request.body[len(session.data) - start :]
            session.chunks.append(len(request.body))
        received = len(session.data)
        if session.total is not None and received == session.total:
            data = bytes(session.data)
            sent = dict(item.split("=", 1) for item in request.headers.get("x-goog-hash", "").split(",") if "=" in item)
            if sent.get("crc32c", crc32c_b64(data)) != crc32c_b64(data) or sent.get("md5", md5_b64(data)) != md5_b64(
                data
            ):
                return _json_error(400, "The uploaded data did not match the data from the client.", "invalid")
            session.result = self._store(session.bucket, session.name, data, session.content_type, "resumable")
            return Response(200, session.result.resource(self.url))
        headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
        return Response(308, b"", headers)

    def _get_object(self, request: Request) -> Response:
        denied = self._denied(request, "storage.objects.get")
        if denied:
            return denied
        bucket, name = request.params["bucket"], unquote(request.params["object"])
        with self.lock:
            obj = self.objects.get((bucket, name))
        if obj is None:
            return _json_error(404, f"No such object: {bucket}/{name}", "notFound")
        if request.arg("alt") != "media":
            return Response(200, obj.resource(self.url))
        headers = {
            "Content-Type": obj.content_type,
            "X-Goog-Generation": str(obj.generation),
            "X-Goog-Metageneration": "1",
            "X-Goog-Stored-Content-Length": str(len(obj.data)),
            "X-Goog-Storage-Class": "STANDARD",
        }
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", ""))
        if ranged:
            start = int(ranged[1])
            end = min(int(ranged[2]) if ranged[2] else len(obj.data) - 1, len(obj.data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(obj.data)}"
            return Response(206, obj.data[start : end + 1], headers)
        headers["X-Goog-Hash"] = f"crc32c={crc32c_b64(obj.data)},md5={md5_b64(obj.data)}"
        return Response(200, obj.data, headers)

    # -- IAM Credentials ---------------------------------------------------------------------------------------------
    def _sign_blob(self, request: Request) -> Response:
        if not self.tokens.authorized(request):
            return self.tokens.unauthenticated()
        email = unquote(request.params["email"])
        account = self.accounts.get(email)
        if account is None:
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist): {email}",
            )
        payload = base64.b64decode(request.json()["payload"])
        signature = account.private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return Response(200, {"keyId": account.key_id, "signedBlob": _b64(signature)})

    # -- XML API: signed URLs ----------------------------------------------------------------------------------------
    def _xml_get(self, request: Request) -> Response:
        if "X-Goog-Signature" not in request.query:
            return xml_error(_refuse(403, "AccessDenied", "Anonymous caller does not have storage.objects.get access."))
        query = [(k, v) for k, values in request.query.items() for v in values]
        keys = {email: a.public_key for email, a in self.accounts.items()}
        verdict = check_v4_signature(request.method, request.path, query, request.headers, None, self.clock, keys)
        if not verdict:
            return xml_error(verdict)
        bucket, name = request.params["bucket"], unquote(request.params["object"])
        with self.lock:
            obj = self.objects.get((bucket, name))
        if obj is None:
            return xml_error(_refuse(404, "NoSuchKey", "The specified key does not exist."))
        return Response(200, obj.data, {"Content-Type": obj.content_type, "X-Goog-Generation": str(obj.generation)})


def _json_error(code: int, message: str, reason: str) -> Response:
    # The JSON API's error shape: google.rpc-style `error` with the legacy `errors` list the SDK also understands.
    body = {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }
    return Response(code, body)


def _parse_multipart(request: Request) -> tuple[dict[str, Any], str, bytes]:
    """multipart/related with a JSON metadata part and a media part, as the SDK builds it."""
    found = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
    if not found:
        raise ValueError("no boundary")
    delimiter = b"--" + found[1].encode()
    parts = request.body.split(delimiter)
    if len(parts) < 4 or not parts[-1].startswith(b"--"):
        raise ValueError("expected a metadata part and a media part")
    sections = []
    for part in parts[1:3]:
        head, sep, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no header block")
        headers = dict(
            (k.strip().lower(), v.strip()) for k, _, v in (line.decode().partition(":") for line in head.split(b"\r\n"))
        )
        sections.append((headers, content.removesuffix(b"\r\n")))
    metadata = json.loads(sections[0][1])
    return metadata, sections[1][0].get("content-type", "application/octet-stream"), sections[1][1]
