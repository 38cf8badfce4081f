"""The `adagent` command as a user runs it: serve, create (embedded and against a server), events."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.runtime.media_probe import probe
from tests.conftest import EXAMPLE_AVATAR


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "ADAGENT_HOME": str(home)}


def _adagent(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli.main", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _create(tmp_path: Path, text: str, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.txt"
    script.write_text(text)
    return subprocess.run(
        _adagent("create", "--script", str(script), "--avatar", str(EXAMPLE_AVATAR), "--out", str(out), *options),
        env=_env(tmp_path / "client-home"),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_create_embedded_writes_the_mp4_and_events_prints_the_history(tmp_path: Path) -> None:
    out = tmp_path / "ad.mp4"
    done = _create(tmp_path, "Wake up radiant, every single morning.", out, "--aspect-ratio", "9:16")
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr and "Generating clip 1/1" in done.stderr
    job_id = done.stdout.split()[1].rstrip(":")
    assert job_id.startswith("ad_")
    info = probe(out)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 720, 1280)

    events = subprocess.run(
        _adagent("events", job_id),
        env=_env(tmp_path / "client-home"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert events.returncode == 0, events.stderr
    lines = events.stdout.splitlines()
    assert "JobRequested" in lines[0] and "JobCompleted" in lines[-1]
    assert "Wake up radiant, every single morning." in events.stdout

    missing = subprocess.run(
        _adagent("events", "ad_404"), env=_env(tmp_path / "client-home"), capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and "no events" in missing.stderr

    rebuilt = subprocess.run(
        _adagent("rebuild-views"), env=_env(tmp_path / "client-home"), capture_output=True, text=True, timeout=60
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    found = re.fullmatch(r"rebuilt 1 job views from (\d+) events\n", rebuilt.stdout)
    recorded = sum(1 for line in lines if re.match(r"\s*\d+\s+\d\d:\d\d:\d\d\.\d{3}\s", line))
    # Every event of the store is read: the job's, and the accounts' (the built-in user "local" was added).
    assert found is not None and int(found.group(1)) > recorded, rebuilt.stdout


def test_serve_then_create_against_it_then_stop_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        _adagent("serve", "--port", str(port)),
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not become healthy"
            time.sleep(0.2)
        added = subprocess.run(
            _adagent("users", "add", "ann", "--password-stdin"),
            input="ann-password-123\n",
            env=_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert added.returncode == 0
        key = subprocess.run(
            _adagent("keys", "create", "ann"),
            env=_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        out = tmp_path / "ad.mp4"
        unauthenticated = _create(tmp_path, "Hello.", out, "--server", f"http://127.0.0.1:{port}")
        assert unauthenticated.returncode == 1 and "HTTP 401" in unauthenticated.stderr
        done = _create(
            tmp_path,
            "Order today and save twenty percent!",
            out,
            "--server",
            f"http://127.0.0.1:{port}",
            "--token",
            key,
        )
        script = tmp_path / "script.txt"
        assert done.returncode == 0, done.stderr
        assert probe(out).video_codec == "h264"

        bad = subprocess.run(
            _adagent(
                "create",
                "--script",
                str(script),
                "--avatar",
                str(script),
                "--server",
                f"http://127.0.0.1:{port}",
                "--token",
                key,
            ),
            env=_env(tmp_path / "client-home"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 1
        assert "HTTP 422" in bad.stderr and "character_image" in bad.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Traceback" not in err
