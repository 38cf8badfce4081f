"""A contact sheet for bench/liveness.py: the frames a reviewer looks at to see whether the figures are right.

    .venv/bin/python bench/liveness.py AD.mp4 --sheet sheet.png

A number such as "o/u/w over e/i 0.74" says nothing about whether the mouth looks like an "oo"; these frames do.
Each tile is a square crop of the decoded frame around the face the tracker found on it, labelled with what it
shows, its frame number, its time and the measure that chose it:

1. mid-"oo": of the o/u/w sounds' middle frames, the one with the smallest outer-lip width/height (the roundest);
2. mid-"ee": of the e/i sounds' middle frames, the one with the largest width/height (the most spread);
3. m/b/p: of the m/b/p sounds' middle frames, the one with the smallest inner-lip gap (the most shut);
4. blink: of the blinks found, the frame with the lowest eye aspect ratio, or a tile saying none was found;
5. the largest jump: the two frames either side of the largest face-box frame difference, side by side and cut
   from the same place, so what changed between them is what the reviewer sees change;
6. rest: the first frame, the avatar as the photo gave it, to compare the others with.

The frames are chosen with the bench's own measures (liveness_metrics, called as bench/liveness.py's `figures`
calls them) on the landmarks it tracked; the video is decoded a second time only to cut the chosen frames out, so
the analysis itself is untouched and a sheet costs a decode, not a second tracking run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench import liveness_metrics as m

TILE: Final = 288  # a crop's side on the sheet, px
LABEL: Final = 64  # the label strip under each crop, px
COLUMNS: Final = 4  # cells per row; the jump's pair takes two cells next to each other
MARGIN: Final = 1.4  # a crop's side over the face mesh's long side: the whole head, a little around it
LIFT: Final = 0.06  # the crop's centre above the mesh's, in crop sides
SUFFIXES: Final = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
BACKGROUND: Final = (24, 24, 24)
TEXT: Final = (235, 235, 235)
MUTED: Final = (160, 160, 160)


@dataclass(frozen=True)
class Pick:
    """One tile or, with two frames, a pair of tiles side by side; no frames: a tile saying why (`note`)."""

    title: str
    frames: tuple[int, ...]
    note: str


def _extreme(values: m.Floats, frames: Sequence[int], *, largest: bool) -> int | None:
    """The frame of `frames` whose value is the smallest (largest); None when none has a finite value."""
    chosen = [f for f in dict.fromkeys(frames) if np.isfinite(values[f])]
    if not chosen:
        return None
    at = np.asarray([values[f] for f in chosen])
    return chosen[int(np.argmax(at) if largest else np.argmin(at))]


def picks(points: m.Floats, differences: m.Floats, phones: Sequence[m.Phone], fps: float) -> list[Pick]:
    """What the sheet shows, in order, from the bench's landmarks (frames, 478, 2), face-box differences and the
    script's phonemes at their times in the ad."""
    frames = len(points)
    shapes = m.mouth_shapes(points)
    classes = m.class_frames(phones, fps, frames)
    ear = m.eye_aspect_ratio(points)
    out: list[Pick] = []

    def one(title: str, frame: int | None, measure: str, values: m.Floats, missing: str) -> None:
        if frame is None:
            out.append(Pick(title, (), missing))
        else:
            out.append(Pick(title, (frame,), f"{measure} {values[frame]:.3f}"))

    roundest = _extreme(shapes.aspect, classes["round"], largest=False)
    one('mid-"oo" (o/u/w)', roundest, "outer lips w/h", shapes.aspect, "no o/u/w sound on a face")
    widest = _extreme(shapes.aspect, classes["spread"], largest=True)
    one('mid-"ee" (e/i)', widest, "outer lips w/h", shapes.aspect, "no e/i sound on a face")
    shut = _extreme(shapes.opening, classes["closure"], largest=False)
    one("m/b/p closure", shut, "inner gap / width", shapes.opening, "no m/b/p sound on a face")
    blink = _extreme(ear, m.blink_frames(ear, fps), largest=False)
    one("blink, most shut", blink, "eye aspect ratio", ear, "no blink found")
    finite = np.flatnonzero(np.isfinite(differences))
    if len(finite):
        # differences[i] is between frames i and i + 1 (liveness.decode), inside frame i's face box.
        i = int(finite[np.argmax(differences[finite])])
        median = float(np.median(differences[finite]))
        out.append(Pick("largest jump", (i, i + 1), f"difference {differences[i]:.2f} (median {median:.2f})"))
    else:
        out.append(Pick("largest jump", (), "no frame difference"))
    out.append(Pick("rest (first frame)", (0,), f"EAR {ear[0]:.3f}, inner gap / width {shapes.opening[0]:.3f}"))
    return out


def cells(chosen: Sequence[Pick]) -> int:
    """How many cells the picks take: a pair takes two."""
    return sum(max(1, len(p.frames)) for p in chosen)


def sheet_size(chosen: Sequence[Pick]) -> tuple[int, int]:
    rows = -(-cells(chosen) // COLUMNS)
    return COLUMNS * TILE, rows * (TILE + LABEL)


def crop_box(points: m.Floats, width: int, height: int) -> tuple[int, int, int, int]:
    """A square around the face mesh (478, 2), inside the frame; the frame's middle square without a face."""
    short = min(width, height)
    if not np.isfinite(points).all():
        x0, y0 = (width - short) // 2, (height - short) // 2
        return x0, y0, x0 + short, y0 + short
    (ax, ay), (bx, by) = points.min(axis=0), points.max(axis=0)
    side = min(short, round(max(bx - ax, by - ay) * MARGIN))
    x0 = int(min(max(0, round((ax + bx - side) / 2)), width - side))
    # The mesh ends at the brow; the hair above is part of the head a viewer sees, the neck below less so.
    y0 = int(min(max(0, round((ay + by - side) / 2 - LIFT * side)), height - side))
    return x0, y0, x0 + side, y0 + side


def decode_frames(video: Path, wanted: set[int]) -> dict[int, Image.Image]:
    """The frames numbered as liveness.decode numbers them (decoding order of the first video stream)."""
    found: dict[int, Image.Image] = {}
    if not wanted:
        return found
    last = max(wanted)
    with av.open(str(video)) as container:
        for n, frame in enumerate(container.decode(container.streams.video[0])):
            if n in wanted:
                found[n] = Image.fromarray(frame.to_ndarray(format="rgb24"))
            if n >= last:
                break
    return found


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def render(video: Path, chosen: Sequence[Pick], points: m.Floats, fps: float) -> Image.Image:
    """The sheet: the picks' cells left to right, top to bottom, each crop with its label underneath."""
    frames = decode_frames(video, {f for p in chosen for f in p.frames if 0 <= f < len(points)})
    sheet = Image.new("RGB", sheet_size(chosen), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title, small = _font(16), _font(13)
    cell = 0
    for pick in chosen:
        box: tuple[int, int, int, int] | None = None
        for k, n in enumerate(pick.frames or (-1,)):
            x, y = (cell % COLUMNS) * TILE, (cell // COLUMNS) * (TILE + LABEL)
            cell += 1
            image = frames.get(n)
            if image is None:
                draw.rectangle((x + 8, y + 8, x + TILE - 9, y + TILE - 9), outline=MUTED, width=2)
                draw.text((x + TILE // 2, y + TILE // 2), pick.note, fill=TEXT, font=title, anchor="mm")
                draw.text((x + 6, y + TILE + 4), pick.title, fill=TEXT, font=title)
                continue
            if box is None:  # a pair is cut where the first frame's face is: the jump's difference was measured there
                box = crop_box(points[n], image.width, image.height)
            sheet.paste(image.crop(box).resize((TILE, TILE), Image.Resampling.LANCZOS), (x, y))
            name = pick.title if len(pick.frames) == 1 else f"{pick.title}: {('before', 'after')[k]}"
            draw.text((x + 6, y + TILE + 4), name, fill=TEXT, font=title)
            draw.text((x + 6, y + TILE + 24), f"frame {n}, {n / fps:.2f} s", fill=MUTED, font=small)
            if k == len(pick.frames) - 1:
                draw.text((x + 6, y + TILE + 42), pick.note, fill=MUTED, font=small)
    return sheet


def write_sheet(
    video: Path, out: Path, points: m.Floats, differences: m.Floats, phones: Sequence[m.Phone], fps: float
) -> list[Pick]:
    """Writes the sheet to `out` (PNG or JPEG by its suffix) and returns what it shows."""
    kind = SUFFIXES.get(out.suffix.lower())
    if kind is None:
        raise ValueError(f"a contact sheet is .png, .jpg or .jpeg, not {out.name}")
    chosen = picks(points, differences, phones, fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    render(video, chosen, points, fps).save(out, kind, **({"quality": 92} if kind == "JPEG" else {}))
    return chosen
