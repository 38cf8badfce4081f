"""A cloud provider chosen without its credentials stops `adagent serve` at start, naming the missing variable; the
secrets that are set never appear in what it prints."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.cli.main import main

CLOUD_VARIABLES = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "ELEVENLABS_API_KEY",
    "ADAGENT_GCS_BUCKET",
    "STORAGE_EMULATOR_HOST",
)


@pytest.fixture(autouse=True)
def no_cloud_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLOUD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADAGENT_HOME", str(tmp_path / "home"))
    # No application default credentials either: an empty config dir, and no metadata server to ask
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ADAGENT_PROMPTER": "gemini"}, "GOOGLE_API_KEY"),
        ({"ADAGENT_RENDERER": "veo", "GOOGLE_CLOUD_PROJECT": "p"}, "GOOGLE_APPLICATION_CREDENTIALS"),
        ({"ADAGENT_VOICE": "elevenlabs"}, "ELEVENLABS_API_KEY"),
        ({"ADAGENT_STORAGE": "gcs"}, "ADAGENT_GCS_BUCKET"),
        ({"ADAGENT_STORAGE": "gcs", "ADAGENT_GCS_BUCKET": "ads"}, "GOOGLE_APPLICATION_CREDENTIALS"),
        ({"ADAGENT_PROMPTER": "gpt"}, "ADAGENT_PROMPTER"),
    ],
)
def test_a_provider_without_credentials_stops_the_server_at_start(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adagent: bad setting: ")
    assert named in err, err
    assert time.monotonic() - started < 10  # no waiting on the network to find out


def test_secrets_that_are_set_are_not_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Gemini's key is there; ElevenLabs' is missing: the error names the missing one and prints no key."""
    monkeypatch.setenv("ADAGENT_PROMPTER", "gemini")
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaSyFAKE-secret-value-0123456789")
    monkeypatch.setenv("ADAGENT_VOICE", "elevenlabs")
    assert main(["serve", "--port", "0"]) == 2
    captured = capsys.readouterr()
    assert "ELEVENLABS_API_KEY" in captured.err
    assert "secret-value" not in captured.err + captured.out
