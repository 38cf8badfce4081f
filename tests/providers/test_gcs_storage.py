"""The Cloud Storage adapter through the real google-cloud-storage SDK against a local fake of the JSON API, IAM
signBlob and the XML API's signed-URL GETs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google.auth
import google.oauth2.credentials
import pytest
import requests
import structlog
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account

from services.runtime.credential_errors import CredentialError
from services.runtime.errors import ProviderError, TransientError
from services.runtime.settings import SettingsError
from services.runtime.storage.gcs import (
    CLOUD_PLATFORM_SCOPE,
    GcsConfig,
    GcsError,
    GcsObjectNotFound,
    GcsStorage,
)
from tests.fakes.gcs import FakeGcs, verify_v4_signed_url
from tests.fakes.google_auth import ServiceAccount
from tests.fakes.server import google_error

BUCKET = "adagent-test"
MIB = 1024 * 1024
UPLOAD = r"^/upload/storage/v1/b/"


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount()  # one RSA key for the module: generating one costs ~0.1 s


@pytest.fixture
def fake(account: ServiceAccount) -> Iterator[FakeGcs]:
    with FakeGcs(account) as server:
        assert isinstance(server, FakeGcs)
        yield server


def key_credentials(fake: FakeGcs) -> service_account.Credentials:
    info = fake.account.info(fake.tokens.token_uri(fake))
    return service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM_SCOPE])


def config_for(fake: FakeGcs, **overrides: Any) -> GcsConfig:
    base = GcsConfig(
        bucket=BUCKET,
        prefix="dev/",
        credentials=key_credentials(fake),
        endpoint=fake.url,
        signed_url_endpoint=fake.url,
        iam_endpoint=fake.url,
        chunk_size=4 * MIB,
        retry_initial_seconds=0.01,
        retry_deadline_seconds=5.0,
        timeout_seconds=10.0,
    )
    return replace(base, **overrides)


@pytest.fixture
def gcs(fake: FakeGcs) -> GcsStorage:
    return GcsStorage(config_for(fake))


async def http_get(url: str) -> requests.Response:
    return await asyncio.to_thread(requests.get, url, timeout=10)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def pattern_bytes(size: int) -> bytes:
    block = bytes(range(256)) * 4096  # 1 MiB of every byte value, so a shifted or re-sent chunk shows
    return (block * (size // len(block) + 1))[:size]


# -- uploads and downloads ---------------------------------------------------------------------------------------------
async def test_put_bytes_then_fetch_round_trips_the_bytes(fake: FakeGcs, gcs: GcsStorage, tmp_path: Path) -> None:
    data = pattern_bytes(300_000)
    ref = await gcs.put_bytes("jobs/j1/avatar.jpg", data, "image/jpeg")

    assert ref == f"gs://{BUCKET}/dev/jobs/j1/avatar.jpg"
    stored = fake.objects[(BUCKET, "dev/jobs/j1/avatar.jpg")]
    assert stored.data == data and stored.content_type == "image/jpeg" and stored.upload_type == "multipart"
    assert fake.sessions == {}

    path = await gcs.fetch(ref, tmp_path / "work")
    assert path.parent == tmp_path / "work" and path.name.endswith("-avatar.jpg")
    assert path.read_bytes() == data
    assert len(fake.calls("GET", r"^/download/storage/v1/b/adagent-test/o/dev%2Fjobs%2Fj1%2Favatar.jpg$")) == 1
    assert files_in(path.parent) == [path.name]  # no temporary file left behind


async def test_small_file_is_one_request_large_file_is_resumable_in_chunks(
    fake: FakeGcs, gcs: GcsStorage, tmp_path: Path
) -> None:
    small, large = tmp_path / "clip.mp4", tmp_path / "final.mp4"
    small.write_bytes(pattern_bytes(2 * MIB))
    large.write_bytes(pattern_bytes(9 * MIB + 123))

    small_ref = await gcs.put_file("jobs/j1/clips/clip_000.mp4", small, "video/mp4")
    large_ref = await gcs.put_file("jobs/j1/j1.mp4", large, "video/mp4")

    assert fake.uploads == {"multipart": 1, "resumable": 1}
    (session,) = fake.resumable_sessions()
    assert session.name == "dev/jobs/j1/j1.mp4" and session.content_type == "video/mp4"
    assert session.chunks == [4 * MIB, 4 * MIB, MIB + 123]
    assert len(fake.calls("PUT", UPLOAD)) == 3
    assert fake.object_bytes(BUCKET, "dev/jobs/j1/j1.mp4") == large.read_bytes()

    fetched_small = await gcs.fetch(small_ref, tmp_path / "out")
    fetched_large = await gcs.fetch(large_ref, tmp_path / "out")
    assert fetched_small.read_bytes() == small.read_bytes()
    assert fetched_large.read_bytes() == large.read_bytes()


async def test_same_object_name_in_two_jobs_fetches_to_distinct_files(gcs: GcsStorage, tmp_path: Path) -> None:
    a = await gcs.put_bytes("jobs/a/clips/clip_000.mp4", b"first", "video/mp4")
    b = await gcs.put_bytes("jobs/b/clips/clip_000.mp4", b"second", "video/mp4")
    pa, pb = await gcs.fetch(a, tmp_path), await gcs.fetch(b, tmp_path)
    assert pa != pb and pa.read_bytes() == b"first" and pb.read_bytes() == b"second"


async def test_a_redelivered_upload_overwrites_the_object(fake: FakeGcs, gcs: GcsStorage) -> None:
    await gcs.put_bytes("jobs/j1/merged.mp4", b"one", "video/mp4")
    await gcs.put_bytes("jobs/j1/merged.mp4", b"two", "video/mp4")
    assert fake.object_bytes(BUCKET, "dev/jobs/j1/merged.mp4") == b"two"


@pytest.mark.parametrize("status", [429, 503])
async def test_upload_is_retried_after_a_busy_answer(fake: FakeGcs, gcs: GcsStorage, status: int) -> None:
    fake.fail_next("POST", UPLOAD, google_error(status, "UNAVAILABLE", "try again later"), times=2)

    ref = await gcs.put_bytes("jobs/j1/avatar.png", b"\x89PNG...", "image/png")

    assert len(fake.calls("POST", UPLOAD)) == 3
    assert fake.object_bytes(*GcsStorage.parse_ref(ref)) == b"\x89PNG..."


async def test_a_resumable_chunk_refused_with_503_is_sent_again(fake: FakeGcs, gcs: GcsStorage, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(pattern_bytes(9 * MIB))
    await gcs.put_bytes("warmup", b"x", "text/plain")  # the first PUT below must be a chunk, not a token refresh
    fake.fail_next("PUT", UPLOAD, google_error(503, "UNAVAILABLE", "backend error"), times=1)

    await gcs.put_file("jobs/j1/big.mp4", big, "video/mp4")

    assert fake.object_bytes(BUCKET, "dev/jobs/j1/big.mp4") == big.read_bytes()
    assert len(fake.calls("PUT", UPLOAD)) == 4  # three chunks, the first one twice


async def test_upload_still_busy_at_the_deadline_is_transient(fake: FakeGcs) -> None:
    gcs = GcsStorage(config_for(fake, retry_deadline_seconds=0.3))
    fake.fail_next("POST", UPLOAD, google_error(503, "UNAVAILABLE", "backend error"), times=1000)

    with pytest.raises(TransientError, match=r"gs://adagent-test/dev/jobs/j1/avatar\.jpg.*503 backend error"):
        await gcs.put_bytes("jobs/j1/avatar.jpg", b"img", "image/jpeg")
    assert len(fake.calls("POST", UPLOAD)) >= 2


async def test_permission_denied_is_permanent_and_says_why(fake: FakeGcs, gcs: GcsStorage) -> None:
    reason = "adagent@x.iam.gserviceaccount.com does not have storage.objects.create access to the object."
    fake.fail_next("POST", UPLOAD, google_error(403, "PERMISSION_DENIED", reason))

    with pytest.raises(CredentialError) as caught:
        await gcs.put_bytes("jobs/j1/avatar.jpg", b"img", "image/jpeg")

    assert not isinstance(caught.value, TransientError)
    assert str(caught.value) == (
        f"Cloud Storage denied access to bucket {BUCKET} (403: {reason}); check the service account's roles on the "
        "bucket (Storage Object Admin, or Storage Object Creator and Viewer)"
    )
    assert len(fake.calls("POST", UPLOAD)) == 1  # a 403 is not retried


async def test_missing_bucket_names_the_bucket(fake: FakeGcs) -> None:
    gcs = GcsStorage(config_for(fake, bucket="no-such-bucket"))
    with pytest.raises(
        GcsError, match=r"gs://no-such-bucket/dev/a\.txt failed: 404 The specified bucket does not exist"
    ):
        await gcs.put_bytes("a.txt", b"a", "text/plain")


async def test_fetching_a_missing_object_is_file_not_found(gcs: GcsStorage, tmp_path: Path) -> None:
    with pytest.raises(
        GcsObjectNotFound, match=r"download of gs://adagent-test/dev/nope\.mp4 failed: 404 No such"
    ) as e:
        await gcs.fetch(f"gs://{BUCKET}/dev/nope.mp4", tmp_path)
    assert isinstance(e.value, FileNotFoundError)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
async def test_bad_keys_are_refused(gcs: GcsStorage, key: str) -> None:
    with pytest.raises(ValueError):
        await gcs.put_bytes(key, b"x", "text/plain")


# -- signed URLs -------------------------------------------------------------------------------------------------------
async def test_signed_url_with_a_service_account_key_verifies_and_downloads(fake: FakeGcs, gcs: GcsStorage) -> None:
    data = pattern_bytes(50_000)
    ref = await gcs.put_bytes("jobs/j1/j1 final.mp4", data, "video/mp4")

    url = await gcs.signed_url(ref, 3600)

    split = urlsplit(url)
    query = parse_qs(split.query)
    assert f"{split.scheme}://{split.netloc}" == fake.url
    assert split.path == "/adagent-test/dev/jobs/j1/j1%20final.mp4"
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["3600"]
    assert query["X-Goog-Credential"][0].startswith(f"{fake.account.email}/")
    assert verify_v4_signed_url(url, fake.account.public_key)
    assert not verify_v4_signed_url(url, ServiceAccount().public_key)  # another key does not fit
    assert fake.calls("POST", "signBlob") == []  # signed offline with the private key

    answer = await http_get(url)
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["Content-Type"] == "video/mp4"


async def test_tampered_or_expired_urls_are_refused(fake: FakeGcs, gcs: GcsStorage) -> None:
    ref = await gcs.put_bytes("jobs/j1/a.mp4", b"a", "video/mp4")
    await gcs.put_bytes("jobs/j1/b.mp4", b"b", "video/mp4")
    url = await gcs.signed_url(ref, 60)

    other_object = url.replace("/a.mp4?", "/b.mp4?")
    longer = url.replace("X-Goog-Expires=60", "X-Goog-Expires=604800")
    for bad in (other_object, longer):
        verdict = verify_v4_signed_url(bad, fake.account.public_key)
        assert not verdict and verdict.code == "SignatureDoesNotMatch"
        answer = await http_get(bad)
        assert answer.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in answer.text

    later = time.time() + 61
    verdict = verify_v4_signed_url(url, fake.account.public_key, now=later)
    assert not verdict and verdict.code == "ExpiredToken"
    fake.clock = later
    answer = await http_get(url)
    assert answer.status_code == 400 and "<Code>ExpiredToken</Code>" in answer.text


async def test_signed_url_lifetime_is_at_most_seven_days(gcs: GcsStorage) -> None:
    ref = await gcs.put_bytes("a.txt", b"a", "text/plain")
    assert "X-Goog-Expires=604800" in await gcs.signed_url(ref, 7 * 24 * 3600)
    for ttl in (7 * 24 * 3600 + 1, 0):
        with pytest.raises(ValueError, match="7 days"):
            await gcs.signed_url(ref, ttl)


async def test_credentials_without_a_key_sign_through_iam_sign_blob(fake: FakeGcs, tmp_path: Path) -> None:
    token = "ya29.user-token-abc"
    fake.tokens.issued.add(token)
    creds = google.oauth2.credentials.Credentials(token=token)  # user/compute-style: a token, no private key
    gcs = GcsStorage(config_for(fake, credentials=creds, signer_email=fake.account.email))
    ref = await gcs.put_bytes("jobs/j1/j1.mp4", b"video bytes", "video/mp4")

    url = await gcs.signed_url(ref, 900)

    (call,) = fake.calls("POST", r"^/v1/projects/-/serviceAccounts/.+:signBlob$")
    assert call.headers["authorization"] == f"Bearer {token}"
    assert verify_v4_signed_url(url, fake.account.public_key)
    assert parse_qs(urlsplit(url).query)["X-Goog-Credential"][0].startswith(f"{fake.account.email}/")
    assert (await http_get(url)).content == b"video bytes"


async def test_sign_blob_refusal_is_reported_with_the_provider_reason(fake: FakeGcs) -> None:
    token = "ya29.user-token-def"
    fake.tokens.issued.add(token)
    creds = google.oauth2.credentials.Credentials(token=token)
    gcs = GcsStorage(config_for(fake, credentials=creds, signer_email="someone-else@other.iam.gserviceaccount.com"))

    with pytest.raises(
        CredentialError,
        match=r"^IAM denied signing download links as someone-else@other\.iam\.gserviceaccount\.com \(403: "
        r"Permission 'iam\.serviceAccounts\.signBlob' denied .*\); give the account in GOOGLE_APPLICATION_CREDENTIALS "
        r"the Service Account Token Creator role on someone-else@other\.iam\.gserviceaccount\.com, or check "
        r"ADAGENT_GCS_SIGNER_EMAIL$",
    ):
        await gcs.signed_url(f"gs://{BUCKET}/x.mp4", 60)


async def test_keyless_credentials_without_a_signer_say_what_to_set(fake: FakeGcs) -> None:
    creds = google.oauth2.credentials.Credentials(token="ya29.t")
    gcs = GcsStorage(config_for(fake, credentials=creds))
    with pytest.raises(GcsError, match="ADAGENT_GCS_SIGNER_EMAIL"):
        await gcs.signed_url(f"gs://{BUCKET}/x.mp4", 60)


# -- configuration -----------------------------------------------------------------------------------------------------
def test_from_env_needs_the_bucket() -> None:
    with pytest.raises(SettingsError, match="ADAGENT_GCS_BUCKET"):
        GcsConfig.from_env({"STORAGE_EMULATOR_HOST": "http://127.0.0.1:1"})


def test_from_env_with_a_missing_key_file_names_the_variable(tmp_path: Path) -> None:
    env = {"ADAGENT_GCS_BUCKET": BUCKET, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "absent.json")}
    with pytest.raises(SettingsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        GcsConfig.from_env(env)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"type": "service_account", "client_email": "a@b.c", '
        '"token_uri": "https://t", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        'SECRETKEYMATERIAL\\n-----END PRIVATE KEY-----\\n"}',
    ],
)
def test_from_env_with_a_broken_key_file_names_the_variable_not_the_key(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "sa.json"
    key_file.write_text(content)
    with pytest.raises(SettingsError, match="GOOGLE_APPLICATION_CREDENTIALS") as caught:
        GcsConfig.from_env({"ADAGENT_GCS_BUCKET": BUCKET, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})
    assert "SECRETKEYMATERIAL" not in str(caught.value)


def test_from_env_without_any_credentials_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_adc(*args: object, **kwargs: object) -> None:  # a machine with no gcloud login and no metadata server
        raise auth_exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_adc)
    with pytest.raises(SettingsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        GcsConfig.from_env({"ADAGENT_GCS_BUCKET": BUCKET})


@pytest.mark.parametrize(
    ("var", "value"),
    [("ADAGENT_GCS_CHUNK_SIZE", "1000"), ("ADAGENT_GCS_BUCKET", "Bad_Bucket!"), ("ADAGENT_GCS_PREFIX", "a/../b")],
)
def test_from_env_rejects_bad_values_by_name(var: str, value: str) -> None:
    env = {"ADAGENT_GCS_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1", var: value}
    with pytest.raises(SettingsError, match=var):
        GcsConfig.from_env(env)


async def test_from_env_with_a_key_file_round_trips_and_signs(fake: FakeGcs, tmp_path: Path) -> None:
    key_file = fake.key_file(tmp_path / "sa.json")
    config = GcsConfig.from_env(
        {
            "ADAGENT_GCS_BUCKET": BUCKET,
            "ADAGENT_GCS_PREFIX": "/prod/",
            "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
            "STORAGE_EMULATOR_HOST": fake.url,
            "ADAGENT_GCS_SIGNED_URL_HOST": fake.url,
            "ADAGENT_GCS_CHUNK_SIZE": str(2 * MIB),
        }
    )
    assert (config.bucket, config.prefix, config.endpoint, config.chunk_size) == (BUCKET, "prod/", fake.url, 2 * MIB)
    assert config.project == fake.account.project
    assert "PRIVATE KEY" not in repr(config)

    gcs = GcsStorage(config)
    ref = await gcs.put_bytes("jobs/j1/captions.vtt", b"WEBVTT\n", "text/vtt")
    assert ref == f"gs://{BUCKET}/prod/jobs/j1/captions.vtt"
    assert fake.calls("POST", "^/token$")  # a real token exchange with the key, then authorized calls
    url = await gcs.signed_url(ref, 600)
    assert verify_v4_signed_url(url, fake.account.public_key)
    assert (await http_get(url)).content == b"WEBVTT\n"


async def test_emulator_without_credentials_works_anonymously(fake: FakeGcs, tmp_path: Path) -> None:
    fake.require_auth = False
    config = GcsConfig.from_env({"ADAGENT_GCS_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": fake.url})
    assert config.credentials is None and config.signed_url_endpoint is None
    gcs = GcsStorage(config)

    ref = await gcs.put_bytes("a.txt", b"anonymous", "text/plain")
    assert (await gcs.fetch(ref, tmp_path)).read_bytes() == b"anonymous"
    assert all("authorization" not in r.headers for r in fake.calls("POST", UPLOAD))
    with pytest.raises(GcsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        await gcs.signed_url(ref, 60)


async def test_default_signed_url_host_is_google(account: ServiceAccount) -> None:
    creds = service_account.Credentials.from_service_account_info(account.info("https://oauth2.googleapis.com/token"))
    gcs = GcsStorage(GcsConfig(bucket=BUCKET, credentials=creds))
    url = await gcs.signed_url(f"gs://{BUCKET}/a b.mp4", 60)  # offline: the private key signs locally
    assert url.startswith(f"https://storage.googleapis.com/{BUCKET}/a%20b.mp4?X-Goog-Algorithm=GOOG4-RSA-SHA256&")
    assert verify_v4_signed_url(url, account.public_key)


# -- secrets -----------------------------------------------------------------------------------------------------------
async def test_keys_and_tokens_never_reach_errors_or_logs(
    fake: FakeGcs, gcs: GcsStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "ya29.secret-token-xyz"
    fake.tokens.issued.add(token)
    keyless = GcsStorage(
        config_for(
            fake,
            credentials=google.oauth2.credentials.Credentials(token=token),
            signer_email="nobody@other.iam.gserviceaccount.com",
        )
    )
    messages: list[str] = []
    with structlog.testing.capture_logs() as structured:
        ref = await gcs.put_bytes("a.txt", b"a", "text/plain")
        await gcs.signed_url(ref, 60)
        fake.fail_next("POST", UPLOAD, google_error(403, "PERMISSION_DENIED", "denied"))
        for attempt in (gcs.put_bytes("b.txt", b"b", "text/plain"), keyless.signed_url(ref, 60)):
            with pytest.raises(ProviderError) as caught:
                await attempt
            messages += [str(caught.value), repr(caught.value), str(caught.value.__cause__)]

    issued = next(t for t in fake.tokens.issued if t != token)  # the one the key was exchanged for
    pem_body = fake.account.private_key_pem().splitlines()[5]
    text = "\n".join([*messages, caplog.text, *(repr(e) for e in structured), repr(gcs.config)])
    for secret in (token, issued, pem_body):
        assert secret not in text
    assert any(e["event"] == "gcs.uploaded" for e in structured)
    assert "/token" in caplog.text  # the libraries' debug logs were captured, and hold no secret


async def test_blocking_calls_leave_the_event_loop_free(fake: FakeGcs, gcs: GcsStorage) -> None:
    fake.latency = 0.3
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await gcs.put_bytes("slow.txt", b"s", "text/plain")
    task.cancel()
    assert ticks >= 10
