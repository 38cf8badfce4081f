"""All four providers' fakes at once, sharing one service account, and the environment that points AdAgent at them.

    .venv/bin/python -m tests.fakes.cloud      # starts them, prints the variables to export, runs until Ctrl-C

so the cloud mode can be tried by hand (`adagent serve` in a shell with those variables) with no account anywhere."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gcs import FakeGcs
from tests.fakes.gemini import FakeGemini
from tests.fakes.google_auth import ServiceAccount
from tests.fakes.veo import FakeVeo

BUCKET = "adagent-test"


class Cloud:
    def __init__(self, tmp: Path, *, poll_seconds: float = 1.0) -> None:
        self.account = ServiceAccount()
        self.gcs = FakeGcs(self.account, buckets=(BUCKET,))
        self.veo = FakeVeo(self.account)
        self.gemini = FakeGemini(account=self.account)
        self.elevenlabs = FakeElevenLabs(plan_concurrency=2, delay_s=0.05)
        for fake in (self.gcs, self.veo, self.gemini, self.elevenlabs):
            fake.start()
        self.poll_seconds = poll_seconds
        self.veo.behaviour.polls_until_done = 2
        # Veo writes its clips straight into the bucket when the request names one (storageUri)
        self.veo.behaviour.on_gcs_write = self._veo_writes
        self.veo.behaviour.read_gcs = self._veo_reads
        self.key_file = self.gcs.key_file(tmp / "service-account.json")

    def _veo_writes(self, uri: str, data: bytes) -> None:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        self.gcs.put_object(bucket, name, data, "video/mp4")

    def _veo_reads(self, uri: str) -> bytes:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return self.gcs.object_bytes(bucket, name)

    def env(self) -> dict[str, str]:
        return {
            "ADAGENT_PROMPTER": "gemini",
            "ADAGENT_RENDERER": "veo",
            "ADAGENT_VOICE": "elevenlabs",
            "ADAGENT_STORAGE": "gcs",
            # Google: one service account for Vertex AI and Cloud Storage, an API key for the Gemini Developer API
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "GOOGLE_CLOUD_PROJECT": self.account.project,
            "GOOGLE_CLOUD_LOCATION": "us-central1",
            "GOOGLE_API_KEY": self.gemini.api_key,
            "GOOGLE_GEMINI_BASE_URL": self.gemini.url,
            "GOOGLE_VERTEX_BASE_URL": self.veo.url,
            "ADAGENT_VEO_POLL_SECONDS": str(self.poll_seconds),
            "ADAGENT_VEO_REQUESTS_PER_MINUTE": "6000",
            "ADAGENT_VEO_OUTPUT_GCS_URI": f"gs://{BUCKET}/veo",
            "ADAGENT_GCS_BUCKET": BUCKET,
            "ADAGENT_GCS_PREFIX": "ads",
            "STORAGE_EMULATOR_HOST": self.gcs.url,
            "ELEVENLABS_API_KEY": self.elevenlabs.api_key,
            "ADAGENT_ELEVENLABS_BASE_URL": self.elevenlabs.url,
        }

    def stop(self) -> None:
        for fake in (self.gcs, self.veo, self.gemini, self.elevenlabs):
            fake.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="adagent-fakes-") as tmp:
        cloud = Cloud(Path(tmp))
        for name, value in cloud.env().items():
            print(f"export {name}={value}")
        print("# fakes running; Ctrl-C stops them", file=sys.stderr, flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
