"""Google credentials for fakes: a service-account key made on the spot (a real RSA key, so signatures made with it
can be verified) and an OAuth2 token endpoint that accepts the JWT-bearer grant the way oauth2.googleapis.com does."""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from tests.fakes.server import FakeServer, Request, Response, google_error

TOKEN_PATH = "/token"
# What oauth2.googleapis.com answers a JWT-bearer grant signed with a deleted or revoked service-account key
REVOKED_KEY_ANSWER = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}


@dataclass
class ServiceAccount:
    project: str = "adagent-test"
    email: str = "adagent-renderer@adagent-test.iam.gserviceaccount.com"
    key_id: str = "fakekey0001"
    private_key: RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    # Access tokens issued for this account by any fake's token endpoint: like Google's, a token from the one OAuth
    # server is good at every API, so one key file serves several fakes.
    issued_tokens: set[str] = field(default_factory=set)
    # The key deleted (or the account disabled) in the console: every token exchange answers Google's documented
    # `400 invalid_grant` and a self-signed JWT of the key is refused, while access tokens issued before stay good
    # until they expire, as Google's do.
    revoked: bool = False

    @property
    def public_key(self) -> RSAPublicKey:
        return self.private_key.public_key()

    def private_key_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def info(self, token_uri: str) -> dict[str, str]:
        """The JSON key file's fields, as the Cloud console downloads it."""
        return {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": self.key_id,
            "private_key": self.private_key_pem(),
            "client_email": self.email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/fake",
            "universe_domain": "googleapis.com",
        }

    def write_key_file(self, path: Path, token_uri: str) -> Path:
        path.write_text(json.dumps(self.info(token_uri)))
        return path


class TokenIssuer:
    """Adds `POST /token` to a fake server and checks `Authorization: Bearer …` headers against what it issued
    (or against a self-signed JWT of the account, which google-auth sends when it skips the token exchange)."""

    def __init__(self, server: FakeServer, account: ServiceAccount) -> None:
        self.account = account
        self._numbers = itertools.count(1)
        server.route("POST", TOKEN_PATH, self._token)

    def token_uri(self, server: FakeServer) -> str:
        return f"{server.url}{TOKEN_PATH}"

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if self.account.revoked:
            return Response(400, REVOKED_KEY_ANSWER)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Response(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""), self.account.public_key, algorithms=["RS256"], options={"verify_aud": False}
            )
        except jwt.PyJWTError as exc:
            return Response(400, {"error": "invalid_grant", "error_description": str(exc)})
        if claims.get("iss") != self.account.email:
            return Response(400, {"error": "invalid_grant", "error_description": "unknown issuer"})
        token = f"ya29.fake-{secrets.token_hex(4)}-{next(self._numbers)}"
        self.issued.add(token)
        return Response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    @property
    def issued(self) -> set[str]:
        return self.account.issued_tokens

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header.removeprefix("Bearer ")
        if token in self.issued:
            return True
        if self.account.revoked:
            return False
        try:
            claims = jwt.decode(token, self.account.public_key, algorithms=["RS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == self.account.email)

    @staticmethod
    def unauthenticated() -> Response:
        return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
