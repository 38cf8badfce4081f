"""The math of bench/liveness.py: from per-frame face landmarks and the decoded audio to the figures of issue 12.

Everything here works on plain arrays, so it can be pinned on synthetic series (tests/unit/test_liveness_metrics.py)
without a video. Landmark indices are MediaPipe's canonical 468-point face mesh (the 478-point model adds irises
after them, so the same indices hold). Every shape is measured in units of the face itself (mouth width, the
distance between the outer eye corners), so the renderer's push-in or a smaller face cannot move a figure.
"""

# ruff: noqa: RUF001, RUF003  (IPA letters, as espeak-ng writes them, look like Latin ones)

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

# Face mesh indices.
MOUTH_LEFT: Final = 61  # outer lip corners
MOUTH_RIGHT: Final = 291
LIP_TOP: Final = 0  # outer upper lip, middle
LIP_BOTTOM: Final = 17  # outer lower lip, middle
INNER_TOP: Final = 13  # inner upper lip, middle
INNER_BOTTOM: Final = 14  # inner lower lip, middle
# EAR's six points per eye: corner, two upper lid, corner, two lower lid (Soukupova & Cech's order).
LEFT_EYE: Final = (33, 160, 158, 133, 153, 144)
RIGHT_EYE: Final = (362, 385, 387, 263, 373, 380)
EYE_OUTER_LEFT: Final = 33
EYE_OUTER_RIGHT: Final = 263

# Audio: a frame is speech when its loudness is within SPEECH_DB of the voice's loud level (the 95th percentile of
# frames above FLOOR_DBFS); gaps shorter than GAP_FILL_S inside speech (stop closures) stay speech.
FLOOR_DBFS: Final = -55.0
SPEECH_DB: Final = -30.0
GAP_FILL_S: Final = 0.08
SILENT_MARGIN_S: Final = 0.12  # a silent frame is this far from any speech: the lips get time to close

# The mouth is closed when the inner lips are apart by less than CLOSED_OPENING of the mouth's width, or are no
# further apart than REST_TOLERANCE more than at the mouth's rest (REST_PERCENTILE of the ad's openings): a photo
# smiling with its teeth showing has its lips a sixth of the width apart at rest, and a viewer sees that as shut.
CLOSED_OPENING: Final = 0.08
REST_TOLERANCE: Final = 0.03
REST_PERCENTILE: Final = 5

# A blink: the eye aspect ratio falls below BLINK_DROP of its running median (over BASELINE_S) for at most
# BLINK_MAX_S; dips closer than BLINK_MERGE_S are one blink. The mesh model holds lids partly open on a shut eye
# (a painted-shut eye reads 0.7-0.78 of its open EAR), and on a still photo the tracker's EAR never falls below
# 0.95 of its median, so 0.85 lies between.
BLINK_DROP: Final = 0.85
BASELINE_S: Final = 2.0
BLINK_MAX_S: Final = 0.5
BLINK_MERGE_S: Final = 0.08

JUMP_TOP: Final = 5
JUMP_FLOOR: Final = 1e-3  # a median difference below this (gray levels) counts as this: a still picture


def _dist(points: Floats, a: int, b: int) -> Floats:
    d: Floats = np.linalg.norm(points[:, a, :] - points[:, b, :], axis=-1)
    return d


# ---- Audio -----------------------------------------------------------------------------------------------------


def frame_loudness(samples: Floats, rate: int, fps: float, frames: int) -> Floats:
    """RMS amplitude (linear, full scale 1.0) of the audio around each video frame: a Hann window two frames long
    centred on the frame's middle."""
    half = max(1, round(rate / fps))
    window = np.hanning(2 * half + 1)
    window /= window.sum()
    power = np.convolve(samples.astype(np.float64) ** 2, window, mode="same")
    centres = np.minimum(((np.arange(frames) + 0.5) / fps * rate).astype(np.int64), len(samples) - 1)
    out: Floats = np.sqrt(np.maximum(power[centres], 0.0)) if len(samples) else np.zeros(frames)
    return out


def to_dbfs(rms: Floats) -> Floats:
    out: Floats = 20.0 * np.log10(np.maximum(rms, 1e-9))
    return out


def _runs(mask: Mask) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(edges[i]), int(edges[i + 1])) for i in range(0, len(edges), 2)]


def speaking_mask(rms: Floats, fps: float) -> Mask:
    """Which frames carry speech, from the audio alone."""
    db = to_dbfs(rms)
    voiced = db > FLOOR_DBFS
    if not voiced.any():
        return np.zeros(len(rms), dtype=bool)
    loud = float(np.percentile(db[voiced], 95))
    speech: Mask = voiced & (db > loud + SPEECH_DB)
    gap = round(GAP_FILL_S * fps)
    runs = _runs(speech)
    for (_, end), (start, _) in itertools.pairwise(runs):
        if start - end <= gap:
            speech[end:start] = True
    return speech


def silent_mask(speaking: Mask, fps: float) -> Mask:
    """Frames at least SILENT_MARGIN_S away from any speaking frame."""
    margin = round(SILENT_MARGIN_S * fps)
    near = np.convolve(speaking.astype(np.float64), np.ones(2 * margin + 1), mode="same") > 0
    out: Mask = ~near
    return out


# ---- Mouth -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MouthShapes:
    """Per frame: the inner lips' gap over the mouth's width; the mouth's width over the eye-corner distance; the
    outer mouth's width over its height (large = spread, small = round)."""

    opening: Floats
    width: Floats
    aspect: Floats


def mouth_shapes(points: Floats) -> MouthShapes:
    """`points`: (frames, landmarks, 2), NaN where no face was found."""
    width = _dist(points, MOUTH_LEFT, MOUTH_RIGHT)
    with np.errstate(invalid="ignore", divide="ignore"):
        return MouthShapes(
            opening=_dist(points, INNER_TOP, INNER_BOTTOM) / width,
            width=width / _dist(points, EYE_OUTER_LEFT, EYE_OUTER_RIGHT),
            aspect=width / _dist(points, LIP_TOP, LIP_BOTTOM),
        )


def pearson(a: Floats, b: Floats) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def per_second_correlation(opening: Floats, loudness: Floats, speaking: Mask, fps: float) -> float:
    """The median, over the one-second windows that are mostly speech (>= 80 % of their frames), of the Pearson
    correlation between the mouth's opening and the voice's loudness in that window. NaN when no window counts."""
    size = max(3, round(fps))
    values = []
    for start in range(0, len(opening) - size + 1, size):
        window = slice(start, start + size)
        if speaking[window].mean() >= 0.8:
            r = pearson(opening[window], loudness[window])
            if np.isfinite(r):
                values.append(r)
    return float(np.median(values)) if values else float("nan")


def closed_below(opening: Floats) -> float:
    """The opening under which this ad's mouth counts as closed."""
    finite = opening[np.isfinite(opening)]
    rest = float(np.percentile(finite, REST_PERCENTILE)) if len(finite) else 0.0
    return max(CLOSED_OPENING, rest + REST_TOLERANCE)


def closed_share(opening: Floats, silent: Mask) -> float:
    """The share of silent frames (with a face) whose mouth is closed. NaN when there is no such frame."""
    chosen = opening[silent & np.isfinite(opening)]
    return float(np.mean(chosen < closed_below(opening))) if len(chosen) else float("nan")


def coefficient_of_variation(values: Floats) -> float:
    v = values[np.isfinite(values)]
    return float(np.std(v) / np.mean(v)) if len(v) >= 2 and np.mean(v) != 0 else float("nan")


# ---- Visemes ---------------------------------------------------------------------------------------------------

# Classes of the sounds the issue names, by espeak-ng's IPA (what piper speaks). A vowel right after another vowel
# is a diphthong's glide ("aɪ", "oʊ"), not a sound of its own, and is left out.
ROUND: Final = frozenset("ouʊwɔɒ")
SPREAD: Final = frozenset("iɪeɛ")
CLOSURE: Final = frozenset("mbp")
_VOWELS: Final = frozenset("aæɑɐʌəɚɜɝeɛiɪoɔɒuʊ")


@dataclass(frozen=True)
class Phone:
    """One spoken sound and when it is heard in the ad, seconds."""

    phoneme: str
    start: float
    end: float


def viseme_class(phoneme: str, previous: str | None) -> str | None:
    """ "round" (o/u/w), "spread" (e/i), "closure" (m/b/p) or None."""
    if phoneme in _VOWELS and previous is not None and previous in _VOWELS:
        return None
    if phoneme in ROUND:
        return "round"
    if phoneme in SPREAD:
        return "spread"
    if phoneme in CLOSURE:
        return "closure"
    return None


def class_frames(phones: Sequence[Phone], fps: float, frames: int) -> dict[str, list[int]]:
    """For each class, the frame nearest the middle of each of its sounds."""
    out: dict[str, list[int]] = {"round": [], "spread": [], "closure": []}
    previous: str | None = None
    for p in phones:
        kind = viseme_class(p.phoneme, previous)
        previous = p.phoneme
        frame = int((p.start + p.end) / 2 * fps)
        if kind is not None and 0 <= frame < frames:
            out[kind].append(frame)
    return out


def closure_share(opening: Floats, frames: Sequence[int], slack: int = 1) -> float:
    """The share of m/b/p sounds during which the lips shut: the least opening within `slack` frames of the
    sound's middle is below `closed_below`."""
    below = closed_below(opening)
    shut = []
    for f in frames:
        around = opening[max(0, f - slack) : f + slack + 1]
        around = around[np.isfinite(around)]
        if len(around):
            shut.append(bool(around.min() < below))
    return float(np.mean(shut)) if shut else float("nan")


def median_at(values: Floats, frames: Sequence[int]) -> float:
    v = values[list(frames)] if frames else np.array([])
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


# ---- Eyes ------------------------------------------------------------------------------------------------------


def eye_aspect_ratio(points: Floats) -> Floats:
    """Both eyes' mean EAR per frame: the lids' two vertical gaps over twice the corner-to-corner width."""
    ears = []
    for p1, p2, p3, p4, p5, p6 in (LEFT_EYE, RIGHT_EYE):
        with np.errstate(invalid="ignore", divide="ignore"):
            ears.append((_dist(points, p2, p6) + _dist(points, p3, p5)) / (2.0 * _dist(points, p1, p4)))
    out: Floats = (ears[0] + ears[1]) / 2.0
    return out


def _running_median(values: Floats, size: int) -> Floats:
    half = size // 2
    padded = np.pad(values, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows (no face) stay NaN
            out: Floats = np.nanmedian(windows, axis=1)
    return out


def blink_frames(ear: Floats, fps: float) -> list[int]:
    """The frame of each blink's deepest point."""
    baseline = _running_median(ear, max(3, round(BASELINE_S * fps)))
    with np.errstate(invalid="ignore"):
        dip: Mask = ear < BLINK_DROP * baseline
    merge = round(BLINK_MERGE_S * fps)
    runs = _runs(dip)
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] <= merge:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    longest = max(1, round(BLINK_MAX_S * fps))
    return [start + int(np.nanargmin(ear[start:end])) for start, end in merged if end - start <= longest]


def interval_irregularity(frames: Sequence[int]) -> float:
    """The coefficient of variation of the intervals between blinks; NaN with fewer than three blinks."""
    if len(frames) < 3:
        return float("nan")
    return coefficient_of_variation(np.diff(np.asarray(frames, dtype=np.float64)))


# ---- Head ------------------------------------------------------------------------------------------------------


def roll_degrees(points: Floats) -> Floats:
    """The tilt of the line between the outer eye corners, degrees."""
    d = points[:, EYE_OUTER_RIGHT, :] - points[:, EYE_OUTER_LEFT, :]
    out: Floats = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    return out


def nanstd(values: Floats) -> float:
    v = values[np.isfinite(values)]
    return float(np.std(v)) if len(v) >= 2 else float("nan")


# ---- Jumps -----------------------------------------------------------------------------------------------------


def jump_ratio(differences: Floats, top: int = JUMP_TOP) -> float:
    """The mean of the `top` largest frame-to-frame differences over the median one."""
    d = np.sort(differences[np.isfinite(differences)])
    if len(d) < top + 1:
        return float("nan")
    return float(d[-top:].mean() / max(float(np.median(d)), JUMP_FLOOR))


# ---- Locating the script's sentences in the ad's audio -------------------------------------------------------

BANDS: Final = 24
FEATURE_RATE: Final = 100.0  # frames per second of the spectral features


def band_energies(samples: Floats, rate: int) -> Floats:
    """Log energy in BANDS log-spaced bands from 100 Hz to 7 kHz, 25 ms windows every 10 ms: (frames, BANDS).
    Defined in Hz, so two recordings at different sample rates compare."""
    hop = round(rate / FEATURE_RATE)
    size = round(rate * 0.025)
    n_fft = 1 << (size - 1).bit_length()
    if len(samples) < size:
        return np.zeros((0, BANDS))
    windows = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), size)[::hop] * np.hanning(size)
    power = np.abs(np.fft.rfft(windows, n=n_fft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    edges = np.geomspace(100.0, 7000.0, BANDS + 1)
    bands = np.stack(
        [power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in itertools.pairwise(edges)],
        axis=1,
    )
    logs = np.log(bands + 1e-12)
    # Silence is a floor 80 dB under the loudest band, not minus infinity; each band's mean over the recording
    # is taken out, so a voice filter's gains (the ad's enhancement) do not count as a difference.
    logs = np.maximum(logs, logs.max() - np.log(1e8))
    out: Floats = logs - logs.mean(axis=0)
    return out


def locate(pieces: Sequence[Floats], whole: Floats, max_gap_s: float = 5.0) -> list[tuple[int, float]]:
    """Where each of `pieces` (feature matrices, in order) starts in `whole`, in feature frames, with the match's
    normalised cross-correlation (1 = the same sound). Each piece is searched from where the one before it ended,
    up to `max_gap_s` later, so a repeated phrase cannot pull a piece back or far ahead."""
    out: list[tuple[int, float]] = []
    at = 0
    for piece in pieces:
        span = len(piece)
        z = piece - piece.mean()
        first = max(0, at - 10)
        region = whole[first : min(len(whole), at + span + round(max_gap_s * FEATURE_RATE))]
        if len(region) < span or span == 0:
            out.append((at, float("nan")))
            continue
        numerator = sum(np.correlate(region[:, b], z[:, b], mode="valid") for b in range(region.shape[1]))
        s1 = np.concatenate([[0.0], np.cumsum(region.sum(axis=1))])
        s2 = np.concatenate([[0.0], np.cumsum((region**2).sum(axis=1))])
        n = span * region.shape[1]
        w1 = s1[span:] - s1[:-span]
        w2 = s2[span:] - s2[:-span]
        score = numerator / (np.sqrt(np.maximum(w2 - w1**2 / n, 1e-12)) * np.sqrt((z**2).sum()) + 1e-12)
        best = int(np.argmax(score))
        out.append((first + best, float(score[best])))
        at = first + best + span
    return out
