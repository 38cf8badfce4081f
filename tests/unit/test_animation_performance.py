"""perform(): the whole performance, on the real piper voice's speech (loaded once, ~2 s) and on synthetic speech."""

# ruff: noqa: RUF003  (IPA letters look like Latin ones)

from __future__ import annotations

import math
import unicodedata

import numpy as np
import pytest

from bench import liveness_metrics as lm
from contracts.events import WordTiming
from services.renderer.animation.performance import loudness, perform, seed_for
from services.renderer.animation.pose import FIELDS, MOUTH_FIELDS, PoseTrack
from services.renderer.animation.visemes import COMPOUNDS, TARGETS, viseme
from services.renderer.speech import Speech
from services.renderer.voices import get_voice

FPS = 25
TAIL = round(0.25 * FPS)  # the renderer's silent tail after each line
LINES = [
    "Meet Glow, the serum that works while you sleep. Order it today!",
    "Our coffee is roasted fresh every morning. Try a cup today, and taste the difference.",
    "Big bold moves, one smooth blend: boost your mornings with Bean Boom, only $19.99.",
]


@pytest.fixture(scope="module")
def spoken() -> list[Speech]:
    voice = get_voice(None)
    return [voice.synthesize(line) for line in LINES]


def frames_of(speech: Speech) -> int:
    return math.ceil(speech.duration_s * FPS) + TAIL


def test_piper_gives_the_timeline_it_spoke(spoken: list[Speech]) -> None:
    for speech in spoken:
        assert speech.phonemes
        assert all(p.end > p.start for p in speech.phonemes if p.phoneme in "^$_")  # time-less markers dropped
        assert all(a.start <= b.start for a, b in zip(speech.phonemes, speech.phonemes[1:], strict=False))
        assert speech.phonemes[-1].end <= speech.duration_s + 1e-6


def test_every_symbol_espeak_speaks_has_a_mouth() -> None:
    voice = get_voice(None)
    text = (
        "The quick brown fox jumps over the lazy dog. Judge Hugh's vision: thin, pure, rhythmic; "
        "oil, boy, cow, eye, ear, air, tour, fire. Measure the church bell, sing along, uh-oh! Anything, bottle, "
        "button, car, bird, father, thought, put, Z, X, Q, 2025, 19.99 percent."
    )
    symbols = {s for sentence in voice._load().phonemize(text) for s in sentence}
    for s in symbols:
        kind = unicodedata.category(s[0])
        if s in TARGETS or s in COMPOUNDS or s in "ˈˌːˑ^$_" or kind[0] in "PZSM" or s.isspace():
            continue
        pytest.fail(f"espeak says {s!r} ({unicodedata.name(s[0], '?')}) and it has no mouth of its own")


def test_the_jaw_follows_the_loudness(spoken: list[Speech]) -> None:
    for speech in spoken:
        frames = frames_of(speech)
        track = perform(speech, frames, FPS, seed=seed_for("x"))
        loud = loudness(speech, frames, FPS)
        assert np.corrcoef(track.jaw, loud)[0, 1] >= 0.6
        # As the liveness bench measures it: per second of speech, against the RMS of the audio.
        samples = speech.samples.astype(np.float64) / 32768
        rms = lm.frame_loudness(samples, speech.sample_rate, FPS, frames)
        speaking = lm.speaking_mask(rms, FPS)
        assert lm.per_second_correlation(track.jaw.astype(np.float64), rms, speaking, FPS) >= 0.5
        assert float(np.max(np.abs(np.diff(track.jaw)))) <= 0.35
        assert float(np.max(track.jaw)) >= 0.6


def test_real_speech_shuts_rounds_and_spreads(spoken: list[Speech]) -> None:
    closures, rounds, spreads = 0, [], []
    for speech in spoken:
        frames = frames_of(speech)
        track = perform(speech, frames, FPS, seed=1)
        previous = ""
        for p in speech.phonemes:
            n = int((p.start + p.end) / 2 * FPS)
            if p.phoneme in "mbp":
                closures += 1
                assert track.press[n] >= 0.8 and track.jaw[n] <= 0.1, (speech, p)
            glide = previous in lm._VOWELS  # the second half of a diphthong, as the bench leaves it out
            if p.phoneme in lm.ROUND and not glide:
                rounds.append((track.round[n], track.wide[n]))
            elif p.phoneme in lm.SPREAD and not glide:
                spreads.append((track.round[n], track.wide[n]))
            if p.phoneme not in "ˈˌː":
                previous = p.phoneme
    assert closures >= 10
    (round_r, round_w), (spread_r, spread_w) = np.mean(rounds, axis=0), np.mean(spreads, axis=0)
    assert round_r > spread_r + 0.2
    assert round_w < spread_w - 0.2
    assert spread_w > 0.1


def test_silence_and_the_tail_rest(spoken: list[Speech]) -> None:
    """Frames 0.3 s or more from any sound: the pauses between sentences and the renderer's tail."""
    resting = 0
    for speech in spoken:
        frames = frames_of(speech)
        track = perform(speech, frames, FPS, seed=1)
        times = (np.arange(frames) + 0.5) / FPS
        near = np.zeros(frames, bool)
        for p in speech.phonemes:
            if viseme(p.phoneme) != "X":
                near |= (times > p.start - 0.3) & (times < p.end + 0.3)
        rest = ~near
        assert rest[-1]  # the tail
        resting += int(rest.sum())
        for name in ("jaw", "wide", "round", "tongue"):
            assert float(np.max(np.abs(getattr(track, name)[rest]))) < 0.02, name
        assert float(np.min(track.press[rest])) >= 0.95  # the lips closed: a smiling photo's parted lips too
    assert resting >= 6


def test_the_performance_is_alive_and_still_at_the_edges(spoken: list[Speech]) -> None:
    speech = spoken[1]
    frames = frames_of(speech)
    track = perform(speech, frames, FPS, seed=seed_for(LINES[1]))
    assert float(np.std(track.roll)) >= 0.9
    assert float(np.max(track.blink_left)) > 0.9
    first, last = track.at(0), track.at(frames - 1)
    for pose in (first, last):
        assert pose.roll == pose.pitch == pose.yaw == 0.0
        assert pose.blink_left == pose.blink_right == 0.0
        assert pose.jaw == 0.0 or pose is first  # the line may start with sound


def test_liveness_off_is_the_old_jaw(spoken: list[Speech]) -> None:
    speech = spoken[0]
    frames = frames_of(speech)
    track = perform(speech, frames, FPS, seed=3, liveness=False)
    np.testing.assert_array_equal(track.jaw, loudness(speech, frames, FPS))
    for name in FIELDS:
        if name != "jaw":
            assert not np.any(getattr(track, name)), name


def test_the_same_line_gives_the_same_performance(spoken: list[Speech]) -> None:
    speech = spoken[0]
    frames = frames_of(speech)
    a = perform(speech, frames, FPS, seed=seed_for(LINES[0]))
    b = perform(speech, frames, FPS, seed=seed_for(LINES[0]))
    c = perform(speech, frames, FPS, seed=seed_for(LINES[1]))
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)
    assert not np.array_equal(a.roll, c.roll)
    assert all(np.array_equal(getattr(a, f), getattr(c, f)) for f in MOUTH_FIELDS)  # the mouth is the speech's
    assert seed_for("Meet Glow") == 0xB2299C87


def test_a_voice_without_phonemes_gets_estimated_ones() -> None:
    rate = 16000
    t = np.arange(int(1.6 * rate)) / rate
    voiced = ((t > 0.2) & (t < 0.5)) | ((t > 0.6) & (t < 1.1))
    samples = (np.sin(2 * np.pi * 180 * t) * 12000 * voiced).astype(np.int16)
    speech = Speech(samples, rate, [WordTiming("Bob", 0.2, 0.5), WordTiming("moon", 0.6, 1.1)])
    frames = math.ceil(speech.duration_s * FPS) + TAIL
    track = perform(speech, frames, FPS, seed=0)
    assert isinstance(track, PoseTrack) and track.frames == frames
    b_start = 0.2 + 0.3 / 4 / 2  # "Bob" = b ɑ b, the vowel twice as long: the first b's middle
    assert track.press[int(b_start * FPS)] >= 0.8
    assert float(np.max(track.round[int(0.65 * FPS) : int(0.9 * FPS)])) > 0.3  # "moon": the oo rounds


def test_hibari_gives_a_timeline_the_lips_follow() -> None:
    voice = get_voice("hibari-heart")
    speech = voice.synthesize(LINES[0])
    assert speech.phonemes and {"m", "p"} <= {p.phoneme for p in speech.phonemes}
    frames = frames_of(speech)
    track = perform(speech, frames, FPS, seed=seed_for(LINES[0]))
    assert np.corrcoef(track.jaw, loudness(speech, frames, FPS))[0, 1] >= 0.6
    for p in speech.phonemes:
        if p.phoneme in "mbp":
            n = int((p.start + p.end) / 2 * FPS)
            assert track.press[n] >= 0.8 and track.jaw[n] <= 0.1, p
