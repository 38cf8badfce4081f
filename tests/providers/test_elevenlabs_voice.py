"""The ElevenLabs voice adapter through the real SDK (AsyncElevenLabs) against a fake of the speech-to-speech API."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import wave
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from services.runtime.errors import TransientError
from services.runtime.ffmpeg import run_ffmpeg
from services.runtime.media_probe import decode_audio, probe, rms_dbfs
from services.runtime.settings import SettingsError
from services.voice.audio_chunks import fit, output_lengths, plan_chunks
from services.voice.elevenlabs import (
    DEFAULT_MODEL,
    DEFAULT_VOICE_ID,
    ElevenLabsConfig,
    ElevenLabsVoiceEnhancer,
    ProviderError,
)
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import Response
from tests.media.media_checks import ebur128, top_level_boxes, video_packets

KEY = "sk_test_0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
RATE = 48000
FPS = 24


# -- media -------------------------------------------------------------------------------------------------------------
def speech_like(seconds: float, rate: int = RATE, seed: int = 7) -> npt.NDArray[np.float32]:
    """Words of voiced syllables (a gliding harmonic tone under a smooth envelope) separated by real pauses."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * rate), dtype=np.float64)
    pos = round(0.25 * rate)
    while True:
        word = []
        for _ in range(rng.integers(1, 4)):
            n = round(rng.uniform(0.12, 0.25) * rate)
            t = np.arange(n) / rate
            f0 = rng.uniform(100, 220) * (1 + 0.15 * t / t[-1])
            phase = 2 * np.pi * np.cumsum(f0) / rate
            tone = sum(np.sin(k * phase) / k for k in range(1, 9))
            word.append(tone * np.sin(np.pi * t / t[-1]) ** 2)
        syllables = np.concatenate(word)
        if pos + len(syllables) > len(out) - round(0.2 * rate):
            break
        out[pos : pos + len(syllables)] = 0.25 * syllables
        pos += len(syllables) + round(rng.uniform(0.15, 0.35) * rate)
    return out.astype(np.float32)


def write_wav(path: Path, samples: npt.NDArray[np.float32], rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def make_cut(folder: Path, seconds: float, *, silent: bool = False) -> Path:
    """A merged cut like the merger's: H.264 test picture, AAC voice (stereo, as concatenated clips are)."""
    folder.mkdir(parents=True, exist_ok=True)
    voice = folder / "voice.wav"
    write_wav(voice, np.zeros(round(seconds * RATE), np.float32) if silent else speech_like(seconds))
    out = folder / "merged.mp4"
    args = [
        "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}:duration={seconds}",
        "-i", str(voice),
        "-map", "0:v", "-map", "1:a", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "160k", "-ac", "2", "-ar", str(RATE),
        str(out),
    ]  # fmt: skip
    asyncio.run(run_ffmpeg(*args))
    return out


@pytest.fixture(scope="module")
def short_cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cut(tmp_path_factory.mktemp("short"), 4.0)


@pytest.fixture(scope="module")
def long_cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cut(tmp_path_factory.mktemp("long"), 12.0)


@pytest.fixture
def fake() -> Iterator[FakeElevenLabs]:
    with FakeElevenLabs(api_key=KEY) as server:
        assert isinstance(server, FakeElevenLabs)
        yield server


def config_for(fake: FakeElevenLabs, **overrides: object) -> ElevenLabsConfig:
    base = ElevenLabsConfig(api_key=KEY, base_url=fake.url, backoff_s=0.02, max_backoff_s=0.1, max_attempts=4)
    return replace(base, **overrides)  # type: ignore[arg-type]


def correlation(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


# -- success -----------------------------------------------------------------------------------------------------------
async def test_converts_the_voice_under_the_untouched_picture(
    fake: FakeElevenLabs, short_cut: Path, tmp_path: Path
) -> None:
    out = tmp_path / "voiced.mp4"
    lufs = await ElevenLabsVoiceEnhancer(config_for(fake)).enhance(short_cut, out, "EXAVITQu4vr4xnSDxMaL")

    (call,) = fake.calls("POST", r"/v1/")
    assert call.path == "/v1/voice-changer/EXAVITQu4vr4xnSDxMaL"
    assert call.headers["xi-api-key"] == KEY
    assert call.query["output_format"] == ["pcm_24000"]
    (conversion,) = fake.conversions
    assert conversion.fields["model_id"] == DEFAULT_MODEL
    assert conversion.fields["remove_background_noise"] == "true"
    assert conversion.input_rate == RATE

    source, voiced = probe(short_cut), probe(out)
    assert video_packets(out) == video_packets(short_cut)  # copied, not re-encoded
    assert voiced.video_duration_s == pytest.approx(source.video_duration_s, abs=1e-6)
    assert voiced.audio_duration_s == pytest.approx(source.audio_duration_s, abs=1 / FPS)
    assert voiced.audio_codec == "aac" and voiced.audio_sample_rate == 48000
    assert top_level_boxes(out).index("moov") < top_level_boxes(out).index("mdat")

    # The fake's conversion inverts polarity: the final sound is the converted one, in sync with the picture.
    assert correlation(decode_audio(out), decode_audio(short_cut)) < -0.8
    measured = await ebur128(out)
    assert measured.integrated_lufs == pytest.approx(-14.0, abs=0.5)
    assert measured.true_peak_dbtp <= -1.0
    assert lufs == pytest.approx(measured.integrated_lufs, abs=0.1)
    assert sorted(p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir()))) == ["voiced.mp4"]


async def test_the_default_voice_is_used_when_the_request_names_none(
    fake: FakeElevenLabs, short_cut: Path, tmp_path: Path
) -> None:
    await ElevenLabsVoiceEnhancer(config_for(fake)).enhance(short_cut, tmp_path / "voiced.mp4", None)
    assert [c.voice_id for c in fake.conversions] == [DEFAULT_VOICE_ID]
    assert fake.calls("POST", rf"/{DEFAULT_VOICE_ID}$")


async def test_a_silent_cut_is_passed_through_without_a_request(fake: FakeElevenLabs, tmp_path: Path) -> None:
    silent = await asyncio.to_thread(make_cut, tmp_path / "silent", 1.0, silent=True)
    out = tmp_path / "voiced.mp4"
    assert await ElevenLabsVoiceEnhancer(config_for(fake)).enhance(silent, out, None) is None
    assert fake.requests == []
    assert video_packets(out) == video_packets(silent)


# -- long audio --------------------------------------------------------------------------------------------------------
async def test_long_audio_is_split_at_pauses_and_joined_seamlessly(long_cut: Path, tmp_path: Path) -> None:
    # The fake rejects anything over 3 s, so unsplit audio would fail; and it answers 20 ms long, which the join must
    # trim or the voice would drift 20 ms per piece behind the picture.
    with FakeElevenLabs(api_key=KEY, max_input_s=3.0, length_error_ms=20.0, delay_s=0.05) as fake:
        assert isinstance(fake, FakeElevenLabs)
        out = tmp_path / "voiced.mp4"
        await ElevenLabsVoiceEnhancer(config_for(fake, max_chunk_s=2.5)).enhance(long_cut, out, None)

    pieces = sorted(fake.conversions, key=lambda c: c.filename)
    assert len(pieces) >= 5
    rate = 24000
    lengths = [len(p.input_samples) for p in pieces]
    assert max(lengths) <= 2.5 * rate
    source = decode_audio(long_cut, rate)
    assert sum(lengths) == pytest.approx(len(source), abs=len(pieces))
    for piece in pieces:  # every cut fell in a pause: no word is split
        edge = round(0.005 * rate)
        assert rms_dbfs(piece.input_samples[:edge]) < -50
        assert rms_dbfs(piece.input_samples[-edge:]) < -50

    voiced = decode_audio(out, rate)
    assert len(voiced) == pytest.approx(len(source), abs=rate / FPS)
    assert video_packets(out) == video_packets(long_cut)
    # Piece by piece, the output is the converted source at the same place: no gap, no drift, nothing inserted.
    start = 0
    for n in lengths:
        span = slice(start, start + n)
        assert correlation(voiced[span], source[span]) < -0.8
        start += n
    # And the joins are quiet: nothing to click.
    for join in np.cumsum(lengths)[:-1]:
        around = voiced[join - round(0.003 * rate) : join + round(0.003 * rate)]
        assert rms_dbfs(around) < -40


async def test_concurrency_never_exceeds_the_plan(long_cut: Path, tmp_path: Path) -> None:
    with FakeElevenLabs(api_key=KEY, plan_concurrency=2, delay_s=0.2) as fake:
        assert isinstance(fake, FakeElevenLabs)
        await ElevenLabsVoiceEnhancer(config_for(fake, max_chunk_s=1.5, concurrency=2)).enhance(
            long_cut, tmp_path / "voiced.mp4", None
        )
    assert len(fake.conversions) >= 8
    assert fake.rejected_busy == 0
    assert fake.max_in_flight == 2  # the limit, and used: pieces went two at a time


async def test_more_requests_than_the_plan_allows_are_turned_away_and_retried(long_cut: Path, tmp_path: Path) -> None:
    """The fake's limit is real: configured above the plan, the adapter meets 429s and its retries still finish."""
    with FakeElevenLabs(api_key=KEY, plan_concurrency=2, delay_s=0.1) as fake:
        assert isinstance(fake, FakeElevenLabs)
        config = config_for(fake, max_chunk_s=1.5, concurrency=4, max_attempts=10)
        await ElevenLabsVoiceEnhancer(config).enhance(long_cut, tmp_path / "voiced.mp4", None)
    assert fake.rejected_busy > 0
    assert len(fake.conversions) == len(plan_chunks(decode_audio(long_cut), RATE, round(1.5 * RATE)))


# -- errors ------------------------------------------------------------------------------------------------------------
BUSY = Response(429, {"detail": {"status": "too_many_concurrent_requests", "message": "Too many concurrent requests"}})


async def test_429_then_success(fake: FakeElevenLabs, short_cut: Path, tmp_path: Path) -> None:
    fake.fail_next("POST", r"/v1/", BUSY, times=2)
    out = tmp_path / "voiced.mp4"
    assert await ElevenLabsVoiceEnhancer(config_for(fake)).enhance(short_cut, out, None) is not None
    assert len(fake.calls("POST", r"/v1/")) == 3
    assert len(fake.conversions) == 1
    assert correlation(decode_audio(out), decode_audio(short_cut)) < -0.8


@pytest.mark.parametrize(
    "answer",
    [BUSY, Response(429, {"detail": {"status": "system_busy", "message": "The system is busy"}}), Response(503, "")],
    ids=["concurrency", "system-busy", "5xx"],
)
async def test_busy_to_the_end_is_transient(
    fake: FakeElevenLabs, short_cut: Path, tmp_path: Path, answer: Response
) -> None:
    fake.fail_next("POST", r"/v1/", answer, times=100)
    with pytest.raises(TransientError) as failure:
        await ElevenLabsVoiceEnhancer(config_for(fake, max_attempts=3)).enhance(short_cut, tmp_path / "v.mp4", None)
    assert len(fake.calls("POST", r"/v1/")) == 3
    assert f"HTTP {answer.status}" in str(failure.value)
    assert not (tmp_path / "v.mp4").exists()


async def test_an_unknown_voice_is_reported_with_the_providers_reason(
    fake: FakeElevenLabs, short_cut: Path, tmp_path: Path
) -> None:
    with pytest.raises(ProviderError) as failure:
        await ElevenLabsVoiceEnhancer(config_for(fake)).enhance(short_cut, tmp_path / "voiced.mp4", "no-such-voice")
    message = str(failure.value)
    assert "HTTP 404" in message
    assert "voice_not_found" in message
    assert "A voice with the voice_id no-such-voice was not found." in message
    assert len(fake.calls("POST", r"/v1/")) == 1  # a 4xx is not retried


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (
            401,
            "missing_permissions",
            "The API key you used is missing the permission speech_to_speech to execute this operation.",
            "ElevenLabs refused the API key a permission it needs (HTTP 401: missing_permissions: The API key you used "
            "is missing the permission speech_to_speech to execute this operation.); give the key in "
            "ELEVENLABS_API_KEY the Speech to Speech permission",
        ),
        (
            401,
            "quota_exceeded",
            "This request exceeds your quota of 10000. You have 35 credits remaining.",
            # the account, not the key: nothing says to check ELEVENLABS_API_KEY
            "ElevenLabs refused the request (HTTP 401): quota_exceeded: This request exceeds your quota of 10000. "
            "You have 35 credits remaining.",
        ),
    ],
    ids=["missing-permission", "quota"],
)
async def test_a_401_says_whether_the_key_is_at_fault(
    fake: FakeElevenLabs, short_cut: Path, tmp_path: Path, status: int, code: str, message: str, expected: str
) -> None:
    fake.fail_next("POST", r"/v1/", Response(status, {"detail": {"status": code, "message": message}}), times=100)
    with pytest.raises(ProviderError) as failure:
        await ElevenLabsVoiceEnhancer(config_for(fake)).enhance(short_cut, tmp_path / "voiced.mp4", None)
    assert str(failure.value) == expected
    assert len(fake.calls("POST", r"/v1/")) == 1  # final: not retried


async def test_the_api_key_never_reaches_logs_or_errors(
    fake: FakeElevenLabs, short_cut: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = ElevenLabsVoiceEnhancer(config_for(fake))
    fake.fail_next("POST", r"/v1/", BUSY, times=1)
    await good.enhance(short_cut, tmp_path / "voiced.mp4", None)
    wrong_key = "sk_wrong_" + KEY[::-1]
    with pytest.raises(ProviderError) as failure:
        await ElevenLabsVoiceEnhancer(config_for(fake, api_key=wrong_key)).enhance(short_cut, tmp_path / "x.mp4", None)
    assert "HTTP 401" in str(failure.value) and "Invalid API key" in str(failure.value)
    assert "retrying" in caplog.text  # the retry was logged...
    for secret in (KEY, wrong_key):  # ...and nothing carried a key
        assert secret not in caplog.text
        assert secret not in str(failure.value)
        assert secret not in repr(config_for(fake, api_key=secret))


# -- configuration -----------------------------------------------------------------------------------------------------
def test_config_needs_the_api_key() -> None:
    with pytest.raises(SettingsError, match="ELEVENLABS_API_KEY"):
        ElevenLabsConfig.from_env({"ADAGENT_VOICE": "elevenlabs"})


def test_config_defaults_and_overrides() -> None:
    defaults = ElevenLabsConfig.from_env({"ELEVENLABS_API_KEY": KEY})
    assert (defaults.default_voice_id, defaults.model_id, defaults.concurrency) == (DEFAULT_VOICE_ID, DEFAULT_MODEL, 2)
    assert defaults.output_format == "pcm_24000" and defaults.base_url is None
    custom = ElevenLabsConfig.from_env(
        {
            "ELEVENLABS_API_KEY": KEY,
            "ADAGENT_ELEVENLABS_VOICE_ID": "onwK4e9ZLuTAKqWW03F9",
            "ADAGENT_ELEVENLABS_MODEL": "eleven_english_sts_v2",
            "ADAGENT_ELEVENLABS_CONCURRENCY": "10",
            "ADAGENT_ELEVENLABS_OUTPUT_FORMAT": "pcm_48000",
            "ELEVENLABS_BASE_URL": "http://127.0.0.1:9/",
        }
    )
    assert custom.default_voice_id == "onwK4e9ZLuTAKqWW03F9" and custom.model_id == "eleven_english_sts_v2"
    assert (custom.concurrency, custom.output_rate, custom.base_url) == (10, 48000, "http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("var", "value"),
    [("ADAGENT_ELEVENLABS_CONCURRENCY", "0"), ("ADAGENT_ELEVENLABS_CONCURRENCY", "two"),
     ("ADAGENT_ELEVENLABS_OUTPUT_FORMAT", "mp3_44100_128")],
)  # fmt: skip
def test_config_rejects_bad_values(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        ElevenLabsConfig.from_env({"ELEVENLABS_API_KEY": KEY, var: value})


# -- splitting and joining ---------------------------------------------------------------------------------------------
def test_cuts_fall_in_pauses_within_the_limit() -> None:
    samples = speech_like(30.0, rate=16000, seed=3)
    bounds = plan_chunks(samples, 16000, 16000 * 4)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(samples)
    assert all(a < b and b - a <= 16000 * 4 for a, b in bounds)
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(bounds))
    for _, cut in bounds[:-1]:
        assert not np.any(samples[cut - 80 : cut + 80])  # 5 ms either side of every cut is silence


def test_output_lengths_add_up_without_drift() -> None:
    bounds = [(0, 44101), (44101, 90001), (90001, 132300)]
    lengths = output_lengths(bounds, 44100, 24000)
    assert sum(lengths) == round(132300 * 24000 / 44100)
    assert all(math.isclose(n, (b - a) * 24000 / 44100, abs_tol=1) for n, (a, b) in zip(lengths, bounds, strict=True))


def test_fit_pads_and_trims() -> None:
    pcm = np.arange(1, 6, dtype=np.int16)
    assert fit(pcm, 3).tolist() == [1, 2, 3]
    assert fit(pcm, 7).tolist() == [1, 2, 3, 4, 5, 0, 0]
