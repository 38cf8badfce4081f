"""A cloud provider chosen without its credentials stops `adagent serve` at start, naming the missing variable; the
secrets that are set never appear in what it prints."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.processes import COMMAND

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


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`adagent serve` in a process of its own, in an environment with no cloud credentials but `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in CLOUD_VARIABLES}
    clean.update(
        ADAGENT_HOME=str(tmp_path / "home"),
        # No application default credentials either: an empty gcloud config, and no metadata server to ask
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        GCE_METADATA_HOST="127.0.0.1:9",
        GCE_METADATA_IP="127.0.0.1:9",
        **env,
    )
    return subprocess.run([*COMMAND, "serve", "--port", "0"], env=clean, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ADAGENT_PROMPTER": "gemini"}, "GOOGLE_API_KEY"),
        ({"ADAGENT_RENDERER": "veo", "GOOGLE_CLOUD_PROJECT": "p"}, "GOOGLE_APPLICATION_CREDENTIALS"),
        ({"ADAGENT_RENDERER": "veo", "ADAGENT_VEO_PERSON_GENERATION": "allow_all"}, "allow_adult or dont_allow"),
        ({"ADAGENT_VOICE": "elevenlabs"}, "ELEVENLABS_API_KEY"),
        ({"ADAGENT_STORAGE": "gcs"}, "ADAGENT_GCS_BUCKET"),
        ({"ADAGENT_STORAGE": "gcs", "ADAGENT_GCS_BUCKET": "ads"}, "GOOGLE_APPLICATION_CREDENTIALS"),
        ({"ADAGENT_PROMPTER": "gpt"}, "ADAGENT_PROMPTER"),
    ],
)
def test_a_provider_without_credentials_stops_the_server_at_start(
    env: dict[str, str], named: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    done = serve(tmp_path, **env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("adagent: bad setting: ")
    assert named in done.stderr, done.stderr
    assert time.monotonic() - started < 20  # no waiting on the network to find out


def test_secrets_that_are_set_are_not_printed(tmp_path: Path) -> None:
    """Gemini's key is there; ElevenLabs' is missing: the error names the missing one and prints no key."""
    done = serve(
        tmp_path,
        ADAGENT_PROMPTER="gemini",
        GOOGLE_API_KEY="AIzaSyFAKE-secret-value-0123456789",
        ADAGENT_VOICE="elevenlabs",
        ADAGENT_LOG_LEVEL="DEBUG",
    )
    assert done.returncode == 2
    assert "ELEVENLABS_API_KEY" in done.stderr
    assert "secret-value" not in done.stderr + done.stdout
