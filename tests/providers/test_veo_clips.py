"""The Veo renderer through the real google-genai SDK (Vertex mode) against a fake Vertex AI that counts calls.

The fake speaks the quoted line for about as long as it takes to say, then is silent to the end of the clip (as Veo
does with a line shorter than the clip), so the files the renderer writes show the cut and the estimated words."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from google import genai
from google.genai import types
from google.oauth2 import service_account
from PIL import Image

from contracts.commands import RenderClip
from contracts.events import ClipGenerationSubmitted, ClipPlan, ClipRendered, JobFailed, JobRequested, event_id
from services.renderer.captions import SAFE_MARGIN
from services.renderer.handler import handle_render_clip
from services.renderer.operation_log import HistoryOperationLog
from services.renderer.rate_limit import RateLimit
from services.renderer.veo import TRIM_TAIL_S, ProviderError, VeoClipRenderer, VeoConfig
from services.renderer.word_timing import script_words
from services.runtime.context import Runtime, open_runtime
from services.runtime.errors import TransientError
from services.runtime.media_probe import decode_audio, probe
from services.runtime.settings import SettingsError, load_settings
from tests.fakes.server import google_error
from tests.fakes.veo import FakeVeo, speech_segments

AVATAR = Path(__file__).resolve().parents[2] / "examples" / "avatar.jpg"
LINE = "Meet Glow, the overnight serum that works while you sleep."
# How far the speech found in the audio may lie from where the fake spoke: a 10 ms analysis window or two, and the
# AAC encoder's smearing of the fake's hard on/off edges.
EDGE_S = 0.05


def trimmed_length(veo_seconds: int) -> float:
    """How long a clip of LINE should come out: the fake's speech, then the tail the renderer keeps."""
    return speech_segments(LINE, veo_seconds)[-1][1] + TRIM_TAIL_S


def voiced_edges(path: Path) -> tuple[float, float]:
    """When a file's sound starts and stops, read independently of the renderer: the first and last 10 ms with an
    RMS over 0.01 (the fake's voice never dips under 0.03; its silence decodes to about zero)."""
    rate = 16000
    samples = decode_audio(path, rate)
    frames = len(samples) // 160
    rms = np.sqrt(np.mean(np.square(samples[: frames * 160].reshape(frames, 160)), axis=1))
    loud = np.flatnonzero(rms > 0.01)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def frame_at(path: Path, seconds: float) -> npt.NDArray[np.int16]:
    """The first picture shown at or after `seconds`, as RGB."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds - 1e-6:
                return frame.to_ndarray(format="rgb24").astype(np.int16)
    raise AssertionError(f"{path} has no picture at {seconds} s")


@pytest.fixture
def fake() -> Iterator[FakeVeo]:
    with FakeVeo() as server:
        yield server  # type: ignore[misc]


def vertex_client(fake: FakeVeo, tmp_path: Path) -> genai.Client:
    key = fake.account.write_key_file(tmp_path / "sa.json", fake.tokens.token_uri(fake))
    credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(key), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    return genai.Client(
        vertexai=True,
        project=fake.account.project,
        location="us-central1",
        credentials=credentials,
        http_options=types.HttpOptions(base_url=fake.url),
    )


class Sleeps:
    """Instead of waiting: note how long the code asked to wait, and yield once."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(load_settings(env={}, home=tmp_path / "home"))
    try:
        yield runtime
    finally:
        await runtime.close()


def command(
    job_id: str = "ad_veo", *, aspect: str = "16:9", est: float = 4.5, index: int = 1, avatar_ref: str | None = None
) -> RenderClip:
    return RenderClip(
        command_id=event_id(job_id, "render", index),
        job_id=job_id,
        clip=ClipPlan(
            index=index, line=LINE, prompt="A woman in a bright bathroom, medium close-up, warm.", est_seconds=est
        ),
        total_clips=1,
        avatar_ref=avatar_ref or f"file://{AVATAR}",
        character_name="Ava",
        voice_id=None,
        aspect_ratio=aspect,
        resolution="720p",
    )


async def requested(rt: Runtime, job_id: str = "ad_veo") -> str:
    """Record the job; return the avatar's reference in the runtime's storage."""
    ref = await rt.storage.put_file(f"jobs/{job_id}/avatar.jpg", AVATAR, "image/jpeg")
    await rt.recorder.record(
        JobRequested(
            event_id=event_id(job_id, "requested"),
            job_id=job_id,
            script=LINE,
            avatar_ref=ref,
            character_name="Ava",
            voice_id=None,
            aspect_ratio="16:9",
            resolution="720p",
        )
    )
    return ref


def renderer(fake: FakeVeo, tmp_path: Path, rt: Runtime, sleeps: Sleeps, **config: object) -> VeoClipRenderer:
    settings = {"poll_first_seconds": 10.0, "poll_max_seconds": 30.0, **config}
    return VeoClipRenderer(
        VeoConfig(**settings),  # type: ignore[arg-type]
        vertex_client(fake, tmp_path),
        HistoryOperationLog(rt),
        rt.storage.fetch,
        rate_limit=RateLimit(600),
        sleep=sleeps,
    )


async def test_renders_a_clip_by_polling_the_long_running_operation(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    sleeps = Sleeps()
    fake.behaviour.polls_until_done = 3
    out = tmp_path / "clip.mp4"
    result = await renderer(fake, tmp_path, rt, sleeps).render(command(), AVATAR, out)

    assert len(fake.generate_calls) == 1
    assert len(fake.poll_calls) == 4  # three "not done yet", then the answer
    assert sleeps.asked[:3] == [10.0, 15.0, 22.5]  # backoff between polls
    body = fake.generate_calls[0].json()
    instance, params = body["instances"][0], body["parameters"]
    assert base64.b64decode(instance["image"]["bytesBase64Encoded"]) == AVATAR.read_bytes()
    assert instance["image"]["mimeType"] == "image/jpeg"
    assert f'says, clearly and naturally: "{LINE}"' in instance["prompt"]
    assert params == {
        "sampleCount": 1,
        "durationSeconds": 6,  # 4.5 s of speech fits in 6
        "aspectRatio": "16:9",
        "resolution": "720p",
        "personGeneration": "allow_adult",
        "negativePrompt": VeoConfig().negative_prompt,
        "generateAudio": True,
        "resizeMode": "CROP",  # the example avatar is square: padded, it would sit between bars in the 16:9 clip
    }
    info = probe(out)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (1280, 720, "h264", "aac")
    assert info.audio_sample_rate == 48000
    assert info.fps == pytest.approx(24, abs=0.01)
    assert result.duration == pytest.approx(trimmed_length(6), abs=EDGE_S + 1 / 24)  # Veo's 6 s, less the dead air
    history = await rt.history("ad_veo")
    [submitted] = history.all(ClipGenerationSubmitted)
    assert submitted.operation_name in fake.operations
    assert submitted.attempt == 1


async def test_square_ads_are_cropped_from_a_wide_clip(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    out = tmp_path / "square.mp4"
    await renderer(fake, tmp_path, rt, Sleeps()).render(command(aspect="1:1", est=7.0), AVATAR, out)
    params = fake.generate_calls[0].json()["parameters"]
    assert (params["aspectRatio"], params["durationSeconds"]) == ("16:9", 8)
    # A square avatar padded into the 16:9 clip is exactly what the square ad keeps: padding loses nothing here
    assert params["resizeMode"] == "PAD"
    info = probe(out)
    assert (info.width, info.height) == (720, 720)
    first = frame_at(out, 0.0).astype(float)
    avatar = np.asarray(Image.open(AVATAR).convert("RGB").resize((720, 720)), dtype=float)
    assert np.corrcoef(first.ravel(), avatar.ravel())[0, 1] > 0.9  # the whole avatar, no bar, no zoom


def avatar_of(tmp_path: Path, size: tuple[int, int]) -> Path:
    """The example avatar's face in a picture of another shape (`size`): stretched, so every column and row of it
    is the face, none a plain border that would look like a bar."""
    path = tmp_path / f"avatar_{size[0]}x{size[1]}.jpg"
    Image.open(AVATAR).convert("RGB").resize(size).save(path, quality=95)
    return path


def bars(frame: npt.NDArray[np.int16]) -> tuple[float, float]:
    """The mean brightness of the leftmost and rightmost 10 % of a frame's columns (pillarbox bars are black)."""
    width = frame.shape[1]
    return float(frame[:, : width // 10].mean()), float(frame[:, -width // 10 :].mean())


@pytest.mark.parametrize(
    ("avatar_size", "aspect", "sent"),
    [
        ((512, 512), "16:9", "CROP"),  # a square face in a wide ad: padded, it would sit between two bars
        ((600, 800), "16:9", "CROP"),  # portrait in a wide ad
        ((1280, 720), "9:16", "CROP"),  # landscape in a tall ad
        ((1280, 720), "16:9", "PAD"),  # the clip's own shape: nothing to pad or crop
        ((720, 1280), "9:16", "PAD"),
    ],
)
async def test_an_avatar_of_another_shape_fills_the_clip(
    fake: FakeVeo, rt: Runtime, tmp_path: Path, avatar_size: tuple[int, int], aspect: str, sent: str
) -> None:
    await requested(rt)
    avatar = avatar_of(tmp_path, avatar_size)
    out = tmp_path / "c.mp4"
    await renderer(fake, tmp_path, rt, Sleeps()).render(command(aspect=aspect), avatar, out)
    assert fake.generate_calls[0].json()["parameters"]["resizeMode"] == sent
    left, right = bars(frame_at(out, 0.0))
    assert left > 40 and right > 40  # the face fills the frame: no black bar on either side


async def test_the_fake_veo_pads_by_default_and_crops_when_asked(fake: FakeVeo, tmp_path: Path) -> None:
    """The documented API: `resizeMode` is `pad` unless the request says `crop`; with an image the prompt may be
    left out; with `storageUri` the video is written under that prefix."""
    client = vertex_client(fake, tmp_path)
    fake.behaviour.polls_until_done = 0
    written: dict[str, bytes] = {}
    fake.behaviour.on_gcs_write = written.__setitem__
    image = types.Image(image_bytes=AVATAR.read_bytes(), mime_type="image/jpeg")  # square, in a 16:9 clip

    async def first_frame(**config: object) -> npt.NDArray[np.int16]:
        operation = await client.aio.models.generate_videos(
            model="veo-3.1-generate-001",
            source=types.GenerateVideosSource(image=image),  # no prompt
            config=types.GenerateVideosConfig(duration_seconds=4, aspect_ratio="16:9", **config),  # type: ignore[arg-type]
        )
        operation = await client.aio.operations.get(operation)
        assert operation.done and operation.response and operation.response.generated_videos
        video = operation.response.generated_videos[0].video
        assert video is not None
        data = video.video_bytes or written[str(video.uri)]
        path = tmp_path / f"{len(fake.generate_calls)}.mp4"
        path.write_bytes(data)
        return frame_at(path, 0.0)

    padded = await first_frame()
    assert max(bars(padded)) < 5  # pillarboxed: the square image between two black bars
    middle = padded[:, 280:1000].astype(float)  # the 720 x 720 image, centred in the 1280 x 720 frame
    avatar = np.asarray(Image.open(AVATAR).convert("RGB").resize((720, 720)), dtype=float)
    assert np.corrcoef(middle.ravel(), avatar.ravel())[0, 1] > 0.9
    assert min(bars(await first_frame(resize_mode="crop"))) > 40  # filled
    await first_frame(output_gcs_uri="gs://bucket/clips/job_1/")
    [uri] = written
    assert uri.startswith("gs://bucket/clips/job_1/") and uri.endswith(".mp4")


async def test_429_is_retried_with_backoff_under_the_shared_limit(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    fake.fail_next(
        "POST", r":predictLongRunning$", google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for veo"), times=2
    )
    sleeps = Sleeps()
    await renderer(fake, tmp_path, rt, sleeps).render(command(), AVATAR, tmp_path / "c.mp4")
    assert len(fake.generate_calls) == 3
    assert 2.0 <= sleeps.asked[0] <= 2.5 and 4.0 <= sleeps.asked[1] <= 5.0  # jittered exponential backoff
    assert len((await rt.history("ad_veo")).all(ClipGenerationSubmitted)) == 1  # only the accepted request


async def test_a_rejected_request_is_a_clear_error(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    fake.fail_next(
        "POST", r":predictLongRunning$", google_error(400, "INVALID_ARGUMENT", "Image is too small: 16x16"), times=9
    )
    with pytest.raises(ProviderError, match=r"Veo rejected clip 1 \(400 INVALID_ARGUMENT: Image is too small: 16x16\)"):
        await renderer(fake, tmp_path, rt, Sleeps()).render(command(), AVATAR, tmp_path / "c.mp4")
    assert len(fake.generate_calls) == 1  # a 4xx is not retried


async def test_a_safety_refusal_names_the_providers_reason(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    fake.behaviour.refuse = "The prompt could not be submitted: it may violate our policies on people."
    with pytest.raises(ProviderError, match="Veo's safety filter refused clip 1: The prompt could not be submitted"):
        await renderer(fake, tmp_path, rt, Sleeps()).render(command(), AVATAR, tmp_path / "c.mp4")


async def test_a_failed_operation_is_generated_again_once_when_the_cause_may_pass(
    fake: FakeVeo, rt: Runtime, tmp_path: Path
) -> None:
    await requested(rt)
    fake.behaviour.fail = (13, "Internal error while generating")
    r = renderer(fake, tmp_path, rt, Sleeps())
    with pytest.raises(ProviderError, match=r"Veo failed clip 1: Internal error while generating \(code 13\)"):
        await r.render(command(), AVATAR, tmp_path / "c.mp4")
    assert len(fake.generate_calls) == 2
    attempts = [e.attempt for e in (await rt.history("ad_veo")).all(ClipGenerationSubmitted)]
    assert attempts == [1, 2]

    fake.behaviour.fail = (3, "Unsupported image content")
    with pytest.raises(ProviderError, match=r"Unsupported image content \(code 3\)"):
        await renderer(fake, tmp_path, rt, Sleeps()).render(command("ad_veo", index=1), AVATAR, tmp_path / "d.mp4")


async def test_the_poll_deadline_leaves_the_operation_for_the_next_delivery(
    fake: FakeVeo, rt: Runtime, tmp_path: Path
) -> None:
    await requested(rt)
    fake.behaviour.polls_until_done = 50
    r = renderer(fake, tmp_path, rt, Sleeps(), poll_deadline_seconds=60.0)
    with pytest.raises(TransientError, match="still generating clip 1 after 60 s"):
        await r.render(command(), AVATAR, tmp_path / "c.mp4")
    fake.behaviour.polls_until_done = 0
    for op in fake.operations.values():
        op.polls_left = 0
    await r.render(command(), AVATAR, tmp_path / "c.mp4")
    assert len(fake.generate_calls) == 1


async def test_a_restarted_renderer_resumes_polling_without_a_second_generate_call(
    fake: FakeVeo, rt: Runtime, tmp_path: Path
) -> None:
    """The renderer dies mid-clip (its task is cancelled while polling, as on SIGKILL the command stays unacked);
    a new renderer gets the same RenderClip, finds the recorded operation and polls it to the end."""
    ref = await requested(rt)
    fake.behaviour.polls_until_done = 1000
    first = renderer(fake, tmp_path, rt, Sleeps())
    task = asyncio.create_task(handle_render_clip(command(avatar_ref=ref), rt=rt, renderer=first))
    while not fake.poll_calls:
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(fake.generate_calls) == 1

    for op in fake.operations.values():
        op.polls_left = 1
    (tmp_path / "restarted").mkdir()
    second = renderer(fake, tmp_path / "restarted", rt, Sleeps())
    await handle_render_clip(command(avatar_ref=ref), rt=rt, renderer=second)

    assert len(fake.generate_calls) == 1  # the fake counts: no second paid generation
    history = await rt.history("ad_veo")
    [submitted] = history.all(ClipGenerationSubmitted)
    [rendered] = history.all(ClipRendered)
    assert rendered.duration_s == pytest.approx(trimmed_length(6), abs=EDGE_S + 1 / 24)
    polled = {r.json()["operationName"] for r in fake.poll_calls}
    assert polled == {submitted.operation_name}


async def test_a_refusal_through_the_handler_ends_the_job_with_the_reason(
    fake: FakeVeo, rt: Runtime, tmp_path: Path
) -> None:
    ref = await requested(rt)
    fake.behaviour.refuse = "Person generation is not allowed for this project."
    await handle_render_clip(command(avatar_ref=ref), rt=rt, renderer=renderer(fake, tmp_path, rt, Sleeps()))
    failed = (await rt.history("ad_veo")).first(JobFailed)
    assert failed is not None and failed.step == 2
    assert failed.message == (
        "Failed to generate clip 1/1: Veo's safety filter refused clip 1: "
        "Person generation is not allowed for this project."
    )


async def test_clips_written_to_cloud_storage_are_fetched_from_there(
    fake: FakeVeo, rt: Runtime, tmp_path: Path
) -> None:
    await requested(rt)
    written: dict[str, bytes] = {}
    fake.behaviour.on_gcs_write = written.__setitem__
    fetched: list[str] = []

    async def fetch(uri: str, dest: Path) -> Path:
        fetched.append(uri)
        path = dest / "fetched.mp4"
        path.write_bytes(written[uri])
        return path

    r = VeoClipRenderer(
        VeoConfig(output_gcs_uri="gs://adagent-clips/veo"),
        vertex_client(fake, tmp_path),
        HistoryOperationLog(rt),
        fetch,
        sleep=Sleeps(),
    )
    out = tmp_path / "c.mp4"
    await r.render(command(), AVATAR, out)
    assert fake.generate_calls[0].json()["parameters"]["storageUri"] == "gs://adagent-clips/veo/ad_veo/clip_001/"
    # Veo writes under the prefix in a folder of its own: the renderer reads the URI Veo answered with
    [uri] = fetched
    assert uri.startswith("gs://adagent-clips/veo/ad_veo/clip_001/") and uri.endswith("/sample_0.mp4")
    assert uri in written
    assert probe(out).width == 1280


async def test_the_dead_air_after_a_short_line_is_cut(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    out = tmp_path / "c.mp4"
    result = await renderer(fake, tmp_path, rt, Sleeps()).render(command(est=7.0), AVATAR, out)
    assert fake.generate_calls[0].json()["parameters"]["durationSeconds"] == 8
    info = probe(out)
    assert info.video_duration_s is not None and info.audio_duration_s is not None
    # About 4.8 s of the 8 s Veo made: the speech, then a short tail
    assert info.video_duration_s == pytest.approx(trimmed_length(8), abs=EDGE_S + 1 / 24)
    assert info.audio_duration_s == pytest.approx(info.video_duration_s, abs=0.025)  # cut at the same moment
    assert result.duration == pytest.approx(info.video_duration_s, abs=1e-3)
    # The start is untouched and no speech is lost at the end
    spoken = speech_segments(LINE, 8)
    start, end = voiced_edges(out)
    assert start == pytest.approx(spoken[0][0], abs=EDGE_S)
    assert end == pytest.approx(spoken[-1][1], abs=EDGE_S)
    assert info.video_duration_s - end == pytest.approx(TRIM_TAIL_S, abs=EDGE_S + 1 / 24)


async def test_the_clip_comes_with_the_lines_words_timed_over_its_speech(
    fake: FakeVeo, rt: Runtime, tmp_path: Path
) -> None:
    await requested(rt)
    result = await renderer(fake, tmp_path, rt, Sleeps()).render(command(est=7.0), AVATAR, tmp_path / "c.mp4")
    words = result.words
    assert [w.word for w in words] == script_words(LINE)  # as a local clip would have them
    assert all(w.start < w.end for w in words)
    assert all(a.end <= b.start for a, b in pairwise(words))
    (said_from, paused_at), (resumed_at, said_until) = speech_segments(LINE, 8)  # "Meet Glow," | "the … sleep."
    assert words[0].start == pytest.approx(said_from, abs=EDGE_S)
    assert words[-1].end == pytest.approx(said_until, abs=EDGE_S)
    # The comma is where the voice paused: "Glow," ends as the pause begins and "the" starts as it ends
    assert words[1].end == pytest.approx(paused_at, abs=EDGE_S)
    assert words[2].start == pytest.approx(resumed_at, abs=EDGE_S)
    # A long word is given longer than a short one
    overnight, that = words[3], words[5]
    assert overnight.end - overnight.start > 2 * (that.end - that.start)


async def test_captions_are_burned_in_unless_switched_off(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    on, off = tmp_path / "on.mp4", tmp_path / "off.mp4"
    result = await renderer(fake, tmp_path, rt, Sleeps()).render(command(), AVATAR, on)
    switched_off = VeoConfig.from_env({"ADAGENT_VEO_CAPTIONS": "false"}).captions
    assert switched_off is False
    plain = await renderer(fake, tmp_path, rt, Sleeps(), captions=switched_off).render(command(), AVATAR, off)
    assert plain.words == result.words  # still there for the ad's WebVTT

    overnight = result.words[3]
    at = (overnight.start + overnight.end) / 2
    captioned, bare = frame_at(on, at), frame_at(off, at)
    height, width = captioned.shape[:2]
    ys, xs = np.nonzero(np.abs(captioned - bare).max(axis=2) > 60)
    assert ys.size > 2000  # text, not encoder noise
    # Where the local renderer puts them: the lower third, inside the title-safe area
    assert ys.min() > height * 2 / 3 and ys.max() < height * (1 - SAFE_MARGIN)
    assert xs.min() >= width * SAFE_MARGIN and xs.max() < width * (1 - SAFE_MARGIN)
    # The word being said is lit in yellow
    r, g, b = captioned[..., 0], captioned[..., 1], captioned[..., 2]
    assert ((r > 200) & (g > 170) & (b < 80))[height * 2 // 3 :].sum() > 200
    # Nothing before the first word: the first frame is the avatar, as Veo made it
    assert np.abs(frame_at(on, 0.0) - frame_at(off, 0.0)).max() < 40


async def test_a_clip_without_speech_is_neither_cut_nor_captioned(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    out = tmp_path / "c.mp4"
    result = await renderer(fake, tmp_path, rt, Sleeps(), generate_audio=False).render(command(est=7.0), AVATAR, out)
    assert fake.generate_calls[0].json()["parameters"]["generateAudio"] is False
    assert result.words == []
    assert result.duration == pytest.approx(8.0, abs=1e-3)
    info = probe(out)
    assert info.audio_codec == "aac" and info.video_duration_s == pytest.approx(8.0, abs=1e-3)


async def test_the_cut_can_be_switched_off(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    await requested(rt)
    assert VeoConfig.from_env({"ADAGENT_VEO_TRIM_SILENCE": "no"}).trim_silence is False
    r = renderer(fake, tmp_path, rt, Sleeps(), trim_silence=False)
    result = await r.render(command(est=7.0), AVATAR, tmp_path / "c.mp4")
    assert result.duration == pytest.approx(8.0, abs=1e-3)
    assert [w.word for w in result.words] == script_words(LINE)


async def test_an_api_key_client_is_refused_with_a_reason(tmp_path: Path, rt: Runtime) -> None:
    client = genai.Client(api_key="AIza-not-a-real-key")
    with pytest.raises(SettingsError, match="Veo needs a Vertex AI client"):
        VeoClipRenderer(VeoConfig(), client, HistoryOperationLog(rt), rt.storage.fetch)


def test_configuration_from_the_environment() -> None:
    config = VeoConfig.from_env(
        {
            "ADAGENT_VEO_MODEL": "veo-3.0-fast-generate-001",
            "ADAGENT_VEO_NEGATIVE_PROMPT": "cartoon",
            "ADAGENT_VEO_REQUESTS_PER_MINUTE": "4",
            "ADAGENT_VEO_PERSON_GENERATION": "dont_allow",
        }
    )
    assert (config.model, config.negative_prompt, config.requests_per_minute) == (
        "veo-3.0-fast-generate-001",
        "cartoon",
        4,
    )
    assert (config.captions, config.trim_silence) == (True, True)  # on unless switched off
    # Clips a renderer waits on at once: all the quota lets start in a minute, unless said otherwise
    assert config.concurrency == 4
    assert VeoConfig.from_env({}).concurrency == 10
    assert VeoConfig.from_env({"ADAGENT_VEO_REQUESTS_PER_MINUTE": "120"}).concurrency == 120
    assert VeoConfig.from_env({"ADAGENT_VEO_REQUESTS_PER_MINUTE": "6000"}).concurrency == 256
    assert VeoConfig.from_env({"ADAGENT_VEO_CONCURRENCY": "3"}).concurrency == 3
    off = VeoConfig.from_env({"ADAGENT_VEO_CAPTIONS": "0", "ADAGENT_VEO_TRIM_SILENCE": "False"})
    assert (off.captions, off.trim_silence) == (False, False)
    for env, message in [
        ({"ADAGENT_VEO_MAX_CLIP_SECONDS": "5"}, "ADAGENT_VEO_MAX_CLIP_SECONDS must be one of 4, 6 or 8"),
        ({"ADAGENT_VEO_REQUESTS_PER_MINUTE": "0"}, "ADAGENT_VEO_REQUESTS_PER_MINUTE must be more than 0"),
        ({"ADAGENT_VEO_CONCURRENCY": "0"}, "ADAGENT_VEO_CONCURRENCY must be at least 1"),
        ({"ADAGENT_VEO_OUTPUT_GCS_URI": "s3://x"}, "ADAGENT_VEO_OUTPUT_GCS_URI must be a gs:// URI"),
        # Text-to-video only: with the avatar as first frame Veo would refuse every clip, so refuse it at start.
        (
            {"ADAGENT_VEO_PERSON_GENERATION": "allow_all"},
            "ADAGENT_VEO_PERSON_GENERATION must be allow_adult or dont_allow, got 'allow_all'",
        ),
    ]:
        with pytest.raises(SettingsError, match=message):
            VeoConfig.from_env(env)


@pytest.mark.postgres
async def test_renderer_processes_share_one_rate_limit(fake: FakeVeo, rt: Runtime, tmp_path: Path) -> None:
    """Two renderers as two processes hold them (their own client, limit and database pool) under one quota of 2
    requests per 2 s, kept in PostgreSQL: four clips start two at once, then two when the window has moved."""
    from services.runtime.limits_storage import PostgresLimitsStorage
    from services.runtime.store.postgres import drop_schema
    from tests.brokers import DATABASE_URL, fresh_namespace

    schema = fresh_namespace("rate")
    storages = [PostgresLimitsStorage(DATABASE_URL, schema) for _ in range(2)]
    limits = [RateLimit(2, per_seconds=2, name="veo:test", storage=storage) for storage in storages]
    fake.behaviour.polls_until_done = 0
    renderers = [
        VeoClipRenderer(
            VeoConfig(),
            vertex_client(fake, tmp_path),
            HistoryOperationLog(rt),
            rt.storage.fetch,
            rate_limit=limit,
            sleep=Sleeps(),
        )
        for limit in limits
    ]
    try:
        jobs = [f"ad_rate{i}" for i in range(4)]
        for job in jobs:
            await requested(rt, job)
        outs = [tmp_path / f"clip{i}" / "clip.mp4" for i in range(4)]
        for out in outs:
            out.parent.mkdir()
        await asyncio.gather(
            *(
                renderers[i % 2].render(command(job), AVATAR, out)
                for i, (job, out) in enumerate(zip(jobs, outs, strict=True))
            )
        )
        arrivals = sorted(call.at for call in fake.generate_calls)
        assert len(arrivals) == 4
        assert arrivals[1] - arrivals[0] < 0.5  # the quota's two at once, one from each process
        assert arrivals[2] - arrivals[0] >= 1.9  # the third when the first leaves the 2 s window, not before
        assert arrivals[3] - arrivals[1] >= 1.9

        # A 429 met by one process holds back the other.
        await limits[0].back_off(1.0)
        started = asyncio.get_running_loop().time()
        await limits[1].acquire()
        assert asyncio.get_running_loop().time() - started >= 0.9
    finally:
        for storage in storages:
            await storage.close()
        await drop_schema(DATABASE_URL, schema)
