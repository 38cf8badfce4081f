"""Local voices with word timings, burned-in ASS captions, the ad's WebVTT, and voice_id checks at the gateway."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
from pathlib import Path

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from contracts.commands import RenderClip
from contracts.events import ClipRendered, WordTiming
from services.gateway.errors import RequestError
from services.gateway.validation import parse_request
from services.merger.captions import build_vtt
from services.renderer.captions import SAFE_MARGIN, ass_filter, caption_metrics, write_ass
from services.renderer.port import RenderedClip
from services.renderer.speech import Speech
from services.renderer.voices import DEFAULT_VOICE_ID, UnknownVoiceError, get_voice, voice_ids
from services.runtime.ffmpeg import ffmpeg_exe
from services.runtime.phrases import group_phrases, phrase_windows
from services.runtime.settings import load_settings
from tests.conftest import Server, start_server
from tests.e2e.flow import check_seed_stream, post_stream

TWO_SENTENCES = "Our coffee is roasted fresh every morning. Try a cup today, and taste the difference."
TRICKY = "It's $19.99 — today only! Call 555-1234."
RATES = {"joe": 22050, "hibari-heart": 24000}
# How far sound may lie outside the words that say it: a model frame or two (piper ~12 ms, hibari 25 ms frames).
SOUND_TOLERANCE_S = {"joe": 0.04}
SIZES = [(1280, 720), (720, 1280), (720, 720), (1920, 1080), (1080, 1920), (1080, 1080)]


@pytest.fixture(scope="module")
def spoken() -> dict[str, tuple[Speech, Speech]]:
    """Every installed voice, speaking the same text twice."""
    return {
        vid: (get_voice(vid).synthesize(TWO_SENTENCES), get_voice(vid).synthesize(TWO_SENTENCES)) for vid in voice_ids()
    }


def _frame_power(speech: Speech) -> tuple[npt.NDArray[np.bool_], float]:
    """Which 10 ms frames are sound (within 35 dB of the loud part), and the frame length in seconds."""
    frame = speech.sample_rate // 100
    n = len(speech.samples) // frame
    power = np.mean(np.square(speech.samples[: n * frame].astype(np.float64).reshape(n, frame)), axis=1)
    return power > np.percentile(power[power > 0], 90) * 10 ** (-35 / 10), frame / speech.sample_rate


def test_the_registry_has_piper_joe_by_default_and_hibari() -> None:
    ids = voice_ids()
    assert ids[0] == DEFAULT_VOICE_ID == "joe"
    assert "hibari-heart" in ids
    assert get_voice(None) is get_voice("joe")
    with pytest.raises(UnknownVoiceError, match="hibari-heart"):
        get_voice("Heather Bryant")


def test_every_voice_speaks_at_its_rate(spoken: dict[str, tuple[Speech, Speech]]) -> None:
    for vid, (speech, _) in spoken.items():
        assert speech.samples.dtype == np.int16 and speech.samples.ndim == 1, vid
        assert speech.sample_rate == RATES.get(vid, 24000), vid
        rms = np.sqrt(np.mean(np.square(speech.samples.astype(np.float64)))) / 32768
        assert 20 * np.log10(rms) > -35, vid
        assert 3.0 < speech.duration_s < 10.0, vid


def test_durations_and_word_timings_are_deterministic(spoken: dict[str, tuple[Speech, Speech]]) -> None:
    for vid, (first, second) in spoken.items():
        assert len(first.samples) == len(second.samples), vid
        assert first.words == second.words, vid


def _check_words(text: str, speech: Speech) -> None:
    assert [w.word for w in speech.words] == text.split()
    previous_end = 0.0
    for w in speech.words:
        assert previous_end <= w.start <= w.end <= speech.duration_s, w
        previous_end = w.end


def test_words_are_the_script_in_order_within_the_audio(spoken: dict[str, tuple[Speech, Speech]]) -> None:
    for vid, (speech, _) in spoken.items():
        _check_words(TWO_SENTENCES, speech)
        assert all(w.end > w.start for w in speech.words), vid  # every word is heard ("a" for ~35 ms)
        tricky = get_voice(vid).synthesize(TRICKY)
        _check_words(TRICKY, tricky)
        timed = {w.word: w.end - w.start for w in tricky.words}
        assert timed["$19.99"] > 0.8 and timed["555-1234."] > 1.0, (vid, tricky.words)  # read out in full
        assert timed["—"] == 0.0  # a dash alone is not spoken


def test_each_word_is_where_its_sound_is(spoken: dict[str, tuple[Speech, Speech]]) -> None:
    for vid, (speech, _) in spoken.items():
        voiced, step = _frame_power(speech)
        spans = [(w.start, w.end) for w in speech.words]
        tolerance = SOUND_TOLERANCE_S.get(vid, 0.08)
        for frame_index in np.flatnonzero(voiced):
            t = (frame_index + 0.5) * step
            assert min(max(a - t, t - b, 0.0) for a, b in spans) <= tolerance, (vid, t)
        # The pause between the sentences: the longest silence inside the speech falls between their words.
        silent = np.concatenate(([False], ~voiced, [False])).astype(np.int8)
        edges = np.flatnonzero(np.diff(silent))
        runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if 0 < a and b < len(voiced)]
        first, last = max(runs, key=lambda r: r[1] - r[0])
        gap_start, gap_end = first * step, last * step
        assert gap_end - gap_start >= 0.2, vid
        k = [w.word for w in speech.words].index("morning.")
        assert speech.words[k].end <= gap_start + tolerance, (vid, speech.words[k], gap_start)
        assert speech.words[k + 1].start >= gap_end - tolerance, (vid, speech.words[k + 1], gap_end)


# --- burned-in captions ------------------------------------------------------------------------------------------

LONG = (
    "Meet Brightly, the bedside lamp that wakes you gently with a slow golden sunrise. "
    "Your mornings will never be the same! Unbelievably-comfortable-and-extraordinarily-bright lamps."
)


def _timed(text: str, step: float = 0.2, start: float = 0.0) -> list[WordTiming]:
    return [
        WordTiming(w, round(start + i * step, 3), round(start + i * step + step * 0.9, 3))
        for i, w in enumerate(text.split())
    ]


def _render(ass: Path, width: int, height: int, seconds: float, fps: int) -> list[npt.NDArray[np.uint8]]:
    """The captions over black, one frame every 1/fps s, as RGB arrays."""
    out = ass.with_suffix(".mkv")
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=black:s={width}x{height}:r={fps}:d={seconds}",
            "-vf", f"format=rgb24,{ass_filter(ass)}", "-c:v", "png", str(out),
        ],
        check=True,
    )  # fmt: skip
    with av.open(str(out)) as container:
        return [np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8) for frame in container.decode(video=0)]


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_captions_stay_inside_the_title_safe_area(width: int, height: int, tmp_path: Path) -> None:
    words = _timed(LONG)
    # A folder name that needs every kind of escaping in an ffmpeg filter.
    ass = tmp_path / "it's [a]: b,c;d" / "captions.ass"
    ass.parent.mkdir()
    write_ass(words, width, height, ass)
    frames = _render(ass, width, height, words[-1].end, fps=5)
    size = caption_metrics(width, height)[0]
    two_lines = 0
    shown = 0
    for frame in frames:
        ys, xs = np.nonzero(frame.max(axis=2) > 40)
        if xs.size == 0:
            continue
        shown += 1
        assert xs.min() >= SAFE_MARGIN * width and xs.max() < (1 - SAFE_MARGIN) * width, (xs.min(), xs.max())
        assert ys.min() >= SAFE_MARGIN * height and ys.max() < (1 - SAFE_MARGIN) * height, (ys.min(), ys.max())
        assert ys.max() - ys.min() < 2.2 * size  # never more than two lines
        two_lines += ys.max() - ys.min() > 1.3 * size
    assert shown >= len(frames) - 1  # a caption on screen all the time the words are spoken
    if width < height or width == height:
        assert two_lines > 0  # the long phrases wrapped onto two lines


def test_only_the_current_word_is_highlighted(tmp_path: Path) -> None:
    words = [WordTiming(w, i * 0.4, i * 0.4 + 0.35) for i, w in enumerate("Brightly wakes you gently".split())]
    ass = tmp_path / "captions.ass"
    write_ass(words, 1280, 720, ass)
    frames = _render(ass, 1280, 720, 1.6, fps=5)  # at 0, 0.2, ... 1.4 s: two frames per word
    centres = []
    for frame in frames[1::2]:
        rgb = frame.astype(int)
        yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 170) & (rgb[..., 2] < 80)
        white = rgb.min(axis=2) > 220
        assert yellow.sum() > 200 and white.sum() > 200
        centres.append(np.nonzero(yellow)[1].mean())
        # The lit word is a different colour from the rest, and from the same words unlit.
        assert not (white & yellow).any()
    assert centres == sorted(centres) and len(set(np.round(centres))) == len(words)


# --- WebVTT ----------------------------------------------------------------------------------------------------

_CUE = re.compile(r"^(\d+)\n(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)$", re.M)


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_vtt_cues_are_the_phrases_at_their_words_times() -> None:
    first = _timed("Meet Brightly, the lamp that wakes you gently every single morning.", 0.3, start=0.1)
    second = _timed("Try it tonight. Sleep better & wake <happier>.", 0.25, start=0.05)
    offset = round(first[-1].end + 0.4, 3)
    second_length = round(second[-1].end + 0.3, 3)  # shorter than the last phrase's hold: the ad ends first
    vtt = build_vtt([(0.0, offset, first), (offset, second_length, second)])
    assert vtt.startswith("WEBVTT\n\n")
    cues = [(_seconds(*m.groups()[1:5]), _seconds(*m.groups()[5:9]), m.group(10)) for m in _CUE.finditer(vtt)]
    expected = []
    for start, length, words in ((0.0, offset, first), (offset, second_length, second)):
        phrases = group_phrases(words)
        for phrase, (_, b) in zip(phrases, phrase_windows(phrases, length), strict=True):
            expected.append((round(start + phrase[0].start, 3), round(start + b, 3), phrase))
    assert len(cues) == len(expected) >= 4
    for (start, end, text), (want_start, want_end, phrase) in zip(cues, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-6)
        assert end == pytest.approx(want_end, abs=1e-6)
        assert start < end
        assert text == " ".join(w.word for w in phrase).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(cues))  # one cue at a time
    assert max(end for start, end, _ in cues if start < offset) <= offset  # a clip's cues end with the clip
    assert cues[-1][1] == pytest.approx(offset + second_length, abs=1e-3)  # and the ad's last cue with the ad


# --- the gateway and the whole pipeline ------------------------------------------------------------------------


async def test_unknown_voice_id_is_refused_with_the_valid_ids(server: Server, avatar_data_uri: str) -> None:
    body = {"script": "Hi there.", "character_image": avatar_data_uri, "voice_id": "nobody"}
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as client:
        response = await client.post("/api/ad-agent/create-stream", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["field"] == "voice_id"
    assert all(vid in payload["detail"] for vid in voice_ids())
    assert await server.stack.runtime.store.job_ids() == []


def test_known_and_default_voice_ids_are_accepted(avatar_data_uri: str, tmp_path: Path) -> None:
    settings = load_settings({"ADAGENT_HOME": str(tmp_path)})
    for voice_id in [None, *voice_ids()]:
        body = json.dumps({"script": "Hi.", "character_image": avatar_data_uri, "voice_id": voice_id}).encode()
        assert parse_request(body, settings).request.voice_id == voice_id
    body = json.dumps({"script": "Hi.", "character_image": avatar_data_uri, "voice_id": "joe"}).encode()
    with pytest.raises(RequestError, match="valid: only-this"):
        parse_request(body, settings, ["only-this"])  # another provider's ids


class TimedFakeRenderer:
    """A one-second grey clip per line, with its words spread over it: what a renderer with timings returns."""

    async def render(self, command: RenderClip, avatar: Path, out: Path) -> RenderedClip:
        proc = await asyncio.create_subprocess_exec(
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "color=c=gray:s=320x180:r=25:d=1",
            "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
            "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(out),
        )  # fmt: skip
        assert await proc.wait() == 0
        words = command.clip.line.split()
        step = 0.9 / len(words)
        return RenderedClip(
            1.0, [WordTiming(w, round(i * step, 3), round((i + 0.8) * step, 3)) for i, w in enumerate(words)]
        )


async def test_the_ad_gets_a_vtt_beside_the_final_video(tmp_path: Path, avatar_data_uri: str) -> None:
    script = (
        "Meet Brightly, the bedside lamp that wakes you with a gentle sunrise, slowly and warmly, every morning. "
        "Order yours today and wake up on the bright side of the bed, every single day of the week."
    )
    async for server in start_server(tmp_path / "home", {"renderer": TimedFakeRenderer()}):
        complete = check_seed_stream(
            await post_stream(server.url, {"script": script, "character_image": avatar_data_uri}, server.token)
        )
        history = await server.stack.runtime.store.history(complete["job_id"])
        clips = sorted((r.event for r in history if isinstance(r.event, ClipRendered)), key=lambda e: e.index)
        assert len(clips) >= 2 and all(c.words for c in clips)
        async with httpx.AsyncClient() as client:
            response = await client.get(complete["captions_url"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/vtt")
        assert f"/jobs/{complete['job_id']}/{complete['job_id']}.vtt" in complete["captions_url"]
        vtt = response.text
        cues = [(_seconds(*m.groups()[1:5]), m.group(10)) for m in _CUE.finditer(vtt)]
        assert " ".join(text for _, text in cues) == " ".join(w.word for c in clips for w in c.words)
        # The second clip's first cue starts one clip later than its first word.
        second_first = next(start for start, text in cues if text.startswith(clips[1].words[0].word))
        assert second_first == pytest.approx(clips[0].duration_s + clips[1].words[0].start, abs=1e-3)
