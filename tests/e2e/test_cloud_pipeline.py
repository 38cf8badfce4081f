"""The seed's flow with every cloud provider chosen (Gemini, Veo, ElevenLabs, Cloud Storage), through the gateway,
each real SDK talking to its local fake; the final URL is a V4 signed URL that verifies against the fake's key, and
the ad's captions (timed by the Veo renderer from the clips' sound) a signed WebVTT beside it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

import av
import httpx
import msgspec
import numpy as np
import pytest
from PIL import Image

from contracts.events import ClipGenerationSubmitted, ClipRendered, JobRequested
from services.runtime.media_probe import probe
from tests.conftest import EXAMPLE_AVATAR, start_server
from tests.e2e.flow import check_seed_stream, post_stream
from tests.fakes.cloud import BUCKET, Cloud
from tests.fakes.gcs import verify_v4_signed_url

SCRIPT = (
    "Meet Glow, the serum that works while you sleep. Wake up radiant and ready. Order today and save twenty percent."
)
VOICE = "EXAVITQu4vr4xnSDxMaL"  # Sarah, a premade ElevenLabs voice


async def test_every_cloud_provider_through_the_gateway(cloud: Cloud, avatar_data_uri: str, tmp_path: Path) -> None:
    async for server in start_server(
        tmp_path / "home", prompter="gemini", renderer="veo", voice="elevenlabs", storage="gcs"
    ):
        body = {"script": SCRIPT, "character_image": avatar_data_uri, "character_name": "Heather", "voice_id": VOICE}
        result = await post_stream(server.url, body, server.token)
        complete = check_seed_stream(result)
        assert result.data("step4")[0]["message"] == "Enhancing voice with ElevenLabs..."
        job_id = complete["job_id"]
        recorded = await server.stack.runtime.store.history(job_id)
        history = [r.event for r in recorded]

    # No secret in any event: the history is kept for ever and replayed to every client
    stored = msgspec.json.encode(recorded).decode()
    # nor a signed link: JobCompleted keeps references, and links are signed when read
    secrets = (cloud.gemini.api_key, cloud.elevenlabs.api_key, "PRIVATE KEY", *cloud.account.issued_tokens)
    for secret in (*secrets, "X-Goog-Signature"):
        assert secret not in stored

    # Step 1: one Gemini call, with the avatar and a response schema
    [gemini] = cloud.gemini.generate_calls()
    clips = [e for e in history if isinstance(e, ClipRendered)]
    n = len(clips)
    assert n == result.data("step1_complete")[0]["total_clips"] >= 2
    assert gemini.json()["generationConfig"]["responseMimeType"] == "application/json"
    # Step 2: one paid Veo operation per clip, each recorded before it was polled, each read back from the bucket
    assert len(cloud.veo.generate_calls) == n
    submitted = [e for e in history if isinstance(e, ClipGenerationSubmitted)]
    assert sorted(e.index for e in submitted) == list(range(1, n + 1))
    assert {e.operation_name for e in submitted} == set(cloud.veo.operations)
    assert all(c.clip_ref.startswith(f"gs://{BUCKET}/ads/jobs/{job_id}/clips/") for c in clips)
    [requested] = [e for e in history if isinstance(e, JobRequested)]
    assert requested.avatar_ref.startswith(f"gs://{BUCKET}/ads/")
    assert all(
        call.json()["instances"][0]["image"]["gcsUri"] == requested.avatar_ref for call in cloud.veo.generate_calls
    )  # the avatar already in the bucket is passed by reference, not uploaded again
    # Step 4: the request's voice, speech-to-speech with background noise removed
    assert cloud.elevenlabs.conversions
    assert {c.voice_id for c in cloud.elevenlabs.conversions} == {VOICE}
    assert all(c.fields["remove_background_noise"] == "true" for c in cloud.elevenlabs.conversions)
    # Step 5: a V4 signed URL to the object in the bucket, valid for the fake's key, downloadable, a real MP4
    url = complete["final_video_url"]
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in url
    assert urlsplit(url).path == f"/{BUCKET}/ads/jobs/{job_id}/{job_id}.mp4"
    assert verify_v4_signed_url(url, cloud.account.public_key)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url)
    assert response.status_code == 200
    video = tmp_path / "ad.mp4"
    await asyncio.to_thread(video.write_bytes, response.content)
    info = probe(video)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 1280, 720)
    # The clips back to back, each cut after its line: shorter than the 4/6/8 s clips Veo was asked for
    assert info.duration_s == pytest.approx(sum(c.duration_s for c in clips), abs=0.1)
    asked = [call.json()["parameters"]["durationSeconds"] for call in cloud.veo.generate_calls]
    assert info.duration_s is not None and info.duration_s < sum(asked) - n * 0.5
    # Captions: every clip's words, estimated from its sound, in a WebVTT beside the video
    assert all(c.words for c in clips)
    async with httpx.AsyncClient(timeout=30) as client:
        vtt = await client.get(complete["captions_url"])
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    cues = re.findall(r"^\d+\n(\d\d):(\d\d):([\d.]+) --> (\d\d):(\d\d):([\d.]+)\n(.+)$", vtt.text, re.M)
    assert " ".join(cue[-1] for cue in cues) == " ".join(SCRIPT.split())
    starts = [int(h) * 3600 + int(m) * 60 + float(sec) for h, m, sec, *_ in cues]
    ends = [int(h) * 3600 + int(m) * 60 + float(sec) for _, _, _, h, m, sec, _ in cues]
    assert starts == sorted(starts) and ends[-1] <= info.duration_s + 0.01  # the last cue ends with the ad
    # The picture is the avatar Veo was given by its gs:// reference, fitted to the frame (centre crop of 16:9)
    with av.open(str(video)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    square = Image.open(EXAMPLE_AVATAR).convert("RGB").resize((1280, 1280))  # the example avatar is square
    avatar = np.asarray(square.crop((0, 280, 1280, 1000)), dtype=float)
    assert np.corrcoef(first.ravel(), avatar.ravel())[0, 1] > 0.8
    tampered = url.replace(f"{job_id}.mp4", f"{job_id}.mp4x")
    assert not verify_v4_signed_url(tampered, cloud.account.public_key)


SIX_CLIPS = (
    "Meet Glow, the overnight serum that works while you sleep. "
    "Packed with vitamin C, it restores your natural radiance by morning. "
    "Hyaluronic acid smooths fine lines and keeps your skin soft all day. "
    "Dermatologists tested it on every skin type, even the most sensitive. "
    "Thousands of customers already wake up to brighter, healthier skin. "
    "Order today and get twenty percent off your very first bottle."
)


async def test_every_clip_of_an_ad_is_generated_at_once_under_the_quota(
    cloud: Cloud, avatar_data_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six clips, a quota of 120 a minute (the fake Veo refuses more with a 429, as the project quota does): all six
    operations run at once, whatever ADAGENT_RENDER_CONCURRENCY says for the local renderer."""
    monkeypatch.setenv("ADAGENT_VEO_REQUESTS_PER_MINUTE", "120")
    cloud.veo.behaviour.requests_per_minute = 120
    cloud.veo.behaviour.operation_seconds = 1.5  # long enough for six starts to overlap, if they all start
    async for server in start_server(
        tmp_path / "home", prompter="gemini", renderer="veo", voice="elevenlabs", storage="gcs", render_concurrency=2
    ):
        body = {"script": SIX_CLIPS, "character_image": avatar_data_uri, "voice_id": VOICE}
        complete = check_seed_stream(await post_stream(server.url, body, server.token))
        history = [r.event for r in await server.stack.runtime.store.history(complete["job_id"])]
    assert len([e for e in history if isinstance(e, ClipRendered)]) == 6
    assert len(cloud.veo.generate_calls) == 6  # none refused: the six fit in the quota's minute
    assert cloud.veo.max_in_flight == 6
