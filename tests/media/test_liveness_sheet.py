"""bench/liveness.py --sheet: the contact sheet a reviewer looks at, written from a real render of the example avatar.
The sheet must be the image of its grid, every tile a crop of the face, and the blink tile must show the eyes more
shut than the rest tile does: the face tracker, run again on the sheet's own pixels, reads a lower eye aspect ratio
there, so the tiles are the frames they say they are, not any frames."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import liveness_metrics as m
from bench import liveness_sheet as sheet
from services.renderer.face_model import detect_face
from services.renderer.local import LocalClipRenderer
from tests.media.conftest import render_command
from tests.media.faces import EXAMPLE

ROOT = Path(__file__).resolve().parents[2]
LINE = "Meet Glow, the serum that works while you sleep. Order it today and get twenty percent off!"
# The cells, in the sheet's order (bench/liveness_sheet.py): the jump's pair takes two.
OO, EE, MBP, BLINK, JUMP_BEFORE, JUMP_AFTER, REST = range(7)


def _cell(image: Image.Image, index: int) -> np.ndarray:
    x, y = (index % sheet.COLUMNS) * sheet.TILE, (index // sheet.COLUMNS) * (sheet.TILE + sheet.LABEL)
    return np.asarray(image.crop((x, y, x + sheet.TILE, y + sheet.TILE)).convert("RGB"))


def _ear(tile: np.ndarray) -> float:
    face = detect_face(np.ascontiguousarray(tile))
    assert face is not None, "no face on the tile"
    return float(m.eye_aspect_ratio(face.points.astype(np.float64)[None])[0])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("sheet")
    clip = folder / "glow.mp4"
    asyncio.run(LocalClipRenderer().render(render_command(LINE, "16:9", "720p"), EXAMPLE, clip))
    script = folder / "script.txt"
    script.write_text(LINE, encoding="utf-8")
    out = folder / "sheet.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "liveness.py"), str(clip), "--script", str(script), "--json",
         "--sheet", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return out, json.loads(done.stdout), done


def test_the_sheet_is_written_as_a_grid_of_face_crops(
    run: tuple[Path, dict[str, object], subprocess.CompletedProcess[str]],
) -> None:
    out, report, done = run
    assert out.is_file(), done.stderr
    assert report["script_aligned"] is True  # --json's stdout is still the one JSON object
    image = Image.open(out)
    assert image.format == "PNG"
    assert image.size == (sheet.COLUMNS * sheet.TILE, 2 * (sheet.TILE + sheet.LABEL))
    blinked = bool(report["blink_times_s"])
    for index in range(7):
        if index == BLINK and not blinked:
            continue
        tile = _cell(image, index)
        assert tile.std() > 20, f"cell {index} is not a picture"  # the background and a note are nearly flat
        assert _ear(tile) > 0  # a face, large: the crop is around the tracked face
    before, after = _cell(image, JUMP_BEFORE), _cell(image, JUMP_AFTER)
    assert np.abs(before.astype(np.int16) - after.astype(np.int16)).mean() > 1  # two frames, not one twice
    assert np.asarray(image.convert("L"))[sheet.TILE + sheet.LABEL :, 3 * sheet.TILE :].std() < 1  # the 8th: empty


def test_the_blink_tile_shows_the_eyes_more_shut_than_the_rest_tile(
    run: tuple[Path, dict[str, object], subprocess.CompletedProcess[str]],
) -> None:
    out, report, _ = run
    image = Image.open(out)
    assert report["blink_times_s"], "this line's render blinks (its seed is the line): the tile must show it"
    assert _ear(_cell(image, BLINK)) < m.BLINK_DROP * _ear(_cell(image, REST))
