"""Signing V4 URLs without a private key: the IAM Credentials API's signBlob signs as the service account.

Why not the SDK's own keyless path (`generate_signed_url(service_account_email=..., access_token=...)`): in
google-cloud-storage 3.x it posts to a hard-coded `https://iamcredentials.{universe_domain}/...`
(`google.cloud.storage._signing._sign_message`), and `google.auth.iam.Signer` builds the same fixed URL, so neither can
be pointed anywhere but Google; a test could only reach it by patching the SDK. Instead the SDK gets a `Signing`
credentials object whose `sign_bytes` calls signBlob at a configurable endpoint. The SDK still builds the canonical
request and the string to sign (the part that has to match Google byte for byte); the one HTTP call we own is the
request the SDK would make (`POST {endpoint}/v1/projects/-/serviceAccounts/{email}:signBlob`, `{"payload": base64}`),
sent through an `AuthorizedSession`, which also refreshes an expired token instead of us passing raw tokens around.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import google.auth.credentials
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import crypt
from google.auth.transport.requests import AuthorizedSession

IAM_CREDENTIALS_ENDPOINT = "https://iamcredentials.googleapis.com"


class IamSigner(crypt.Signer):
    """Signs bytes as `email` through signBlob, authenticated by `credentials` (which need the
    iam.serviceAccounts.signBlob permission on that account, e.g. roles/iam.serviceAccountTokenCreator)."""

    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        email: str,
        endpoint: str = IAM_CREDENTIALS_ENDPOINT,
        retry: Retry | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.email = email
        self._url = f"{endpoint.rstrip('/')}/v1/projects/-/serviceAccounts/{quote(email, safe='@')}:signBlob"
        self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        self._retry = retry
        self._timeout = timeout

    @property
    def key_id(self) -> str | None:
        return None  # IAM picks one of the account's keys; signBlob's answer names it, but nobody needs it here

    def sign(self, message: bytes | str) -> bytes:
        payload = message.encode() if isinstance(message, str) else message
        call = self._retry(self._post) if self._retry is not None else self._post
        answer: dict[str, Any] = call(payload)
        return base64.b64decode(answer["signedBlob"])

    def _post(self, payload: bytes) -> dict[str, Any]:
        response = self._session.post(
            self._url, json={"payload": base64.b64encode(payload).decode()}, timeout=self._timeout
        )
        if response.status_code != 200:
            # Carries the status (so the retry predicate sees 429/5xx) and Google's error message, never the token.
            raise api_exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
        result: dict[str, Any] = response.json()
        return result


class IamSigningCredentials(google.auth.credentials.Signing):
    """What `Blob.generate_signed_url(credentials=...)` needs: `signer_email` and `sign_bytes`."""

    def __init__(self, signer: IamSigner) -> None:
        self._signer = signer

    def sign_bytes(self, message: bytes | str) -> bytes:
        return self._signer.sign(message)

    @property
    def signer_email(self) -> str:
        return self._signer.email

    @property
    def signer(self) -> IamSigner:
        return self._signer
