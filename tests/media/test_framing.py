"""The composed canvas: the person framed on the face, sharp, over the photo's own background continued to every edge.

Faces: the example avatar, scikit-image's astronaut (the same portrait, lossless), a tall crop of it with the person
cut off at the left and bottom, and a tall crop centred on the face (cut off at both sides and the bottom). Formats:
the canvases the renderer composes at 9:16, 16:9 and 1:1, 720p.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from skimage import data

from contracts.formats import frame_size
from services.renderer import face, face_model, framing
from services.renderer.local import PUSH_IN, Scene, compose_scene

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "avatar.jpg"
FORMATS = ("9:16", "16:9", "1:1")
FACES = ("example", "astronaut", "tall", "tall-centred")

Floats = npt.NDArray[np.float64]
Rect = tuple[float, float, float, float]


def canvas_size(aspect_ratio: str) -> tuple[int, int]:
    """The canvas the renderer composes for a format: the frame plus the push-in's margin (even sizes)."""
    width, height = frame_size(aspect_ratio, "720p")
    return 2 * round(width * (1 + PUSH_IN) / 2), 2 * round(height * (1 + PUSH_IN) / 2)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("faces")
    astronaut = np.asarray(data.astronaut(), np.uint8)  # type: ignore[no-untyped-call]
    pictures = {"astronaut": astronaut, "tall": astronaut[:, 128:384], "tall-centred": astronaut[:, 97:353]}
    paths = {"example": EXAMPLE}
    for name, pixels in pictures.items():
        paths[name] = folder / f"{name}.png"
        Image.fromarray(pixels).save(paths[name])
    return paths


@cache
def _scene(avatar: Path, size: tuple[int, int]) -> Scene:
    return compose_scene(avatar, size)


def luma(rgb: npt.NDArray[np.uint8]) -> Floats:
    weighted: Floats = np.asarray(rgb, np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    return weighted


def straight_edge_spike(rgb: npt.NDArray[np.uint8]) -> float:
    """How much the strongest straight line across the whole canvas (a column or a row) stands out.

    Per column x: the median over all rows of |L(x+1) - L(x)|, over the median of the same for the columns 3 to 16
    away; likewise per row. The median along the line only sees a step that runs the whole length: the edge of a
    photo pasted over a different fill, not the edges in the picture, which cover part of it. Steps below 2 levels
    (of 255) count as 2: noise and JPEG blocks are no edge.
    """
    values = luma(rgb)
    worst = 0.0
    for axis in (1, 0):
        profile = np.median(np.abs(np.diff(values, axis=axis)), axis=1 - axis)
        for i in range(len(profile)):
            around = np.concatenate([profile[max(0, i - 16) : max(0, i - 2)], profile[i + 3 : i + 17]])
            worst = max(worst, float(profile[i] / max(np.median(around), 2.0)))
    return worst


def edge_brightness(rgb: npt.NDArray[np.uint8], rect: Rect, band: int = 16) -> list[float]:
    """For each edge of the photo's rectangle inside the canvas: the mean brightness of the band just outside it
    over that of the band just inside it (1 when the canvas continues the photo; today's dimmed fill: ~0.6)."""
    values = luma(rgb)
    height, width = values.shape
    x0, y0, x1, y1 = (round(v) for v in rect)
    xa, xb, ya, yb = max(0, x0), min(width, x1), max(0, y0), min(height, y1)
    ratios = []
    if x0 >= band:
        ratios.append(values[ya:yb, x0 - band : x0].mean() / values[ya:yb, x0 : x0 + band].mean())
    if x1 <= width - band:
        ratios.append(values[ya:yb, x1 : x1 + band].mean() / values[ya:yb, x1 - band : x1].mean())
    if y0 >= band:
        ratios.append(values[y0 - band : y0, xa:xb].mean() / values[y0 : y0 + band, xa:xb].mean())
    if y1 <= height - band:
        ratios.append(values[y1 : y1 + band, xa:xb].mean() / values[y1 - band : y1, xa:xb].mean())
    return [float(r) for r in ratios]


def placement(source: face_model.FaceLandmarks, on_canvas: face_model.FaceLandmarks) -> tuple[float, Floats]:
    """The scale and offset that map the photo onto the canvas, recovered from the landmarks on both."""
    a, b = source.points.astype(np.float64), on_canvas.points.astype(np.float64)
    scale = float(np.std(b - b.mean(0)) / np.std(a - a.mean(0)))
    return scale, b.mean(0) - scale * a.mean(0)


def _setup(faces: dict[str, Path], name: str, aspect_ratio: str) -> tuple[Path, Scene, face_model.FaceLandmarks]:
    avatar = faces[name]
    scene = _scene(avatar, canvas_size(aspect_ratio))
    source = face.find_landmarks(avatar)
    assert source is not None and scene.landmarks is not None
    return avatar, scene, source


@pytest.mark.parametrize("aspect_ratio", FORMATS)
@pytest.mark.parametrize("name", FACES)
def test_no_bands_and_no_photo_rectangle(faces: dict[str, Path], name: str, aspect_ratio: str) -> None:
    avatar, scene, source = _setup(faces, name, aspect_ratio)
    scale, offset = placement(source, scene.landmarks)  # type: ignore[arg-type]
    width, height = Image.open(avatar).size
    rect = (offset[0], offset[1], offset[0] + width * scale, offset[1] + height * scale)

    # Today's contained photo over a dimmed blurred fill: 30 to 90 at 9:16 and 16:9, 0.2-0.75 brightness.
    assert straight_edge_spike(scene.canvas) < 4.0
    for ratio in edge_brightness(scene.canvas, rect):
        assert ratio == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize("aspect_ratio", FORMATS)
@pytest.mark.parametrize("name", FACES)
def test_the_person_is_as_sharp_as_the_photo(faces: dict[str, Path], name: str, aspect_ratio: str) -> None:
    avatar, scene, source = _setup(faces, name, aspect_ratio)
    scale, _ = placement(source, scene.landmarks)  # type: ignore[arg-type]
    reference = np.asarray(
        cv2.resize(face.load_rgb(avatar), None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR), np.uint8
    )

    def sharpness(rgb: npt.NDArray[np.uint8], box: face_model.FaceBox) -> float:
        crop = rgb[round(box.y0) : round(box.y1), round(box.x0) : round(box.x1)]
        return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    on_canvas, in_photo = scene.landmarks.box, source.box  # type: ignore[union-attr]
    scaled = face_model.FaceBox(*(v * scale for v in (in_photo.x0, in_photo.y0, in_photo.x1, in_photo.y1)))
    assert sharpness(scene.canvas, on_canvas) >= 0.7 * sharpness(reference, scaled)


@pytest.mark.parametrize("aspect_ratio", FORMATS)
@pytest.mark.parametrize("name", FACES)
def test_the_face_is_whole_with_head_room_and_the_body_reaches_the_bottom(
    faces: dict[str, Path], name: str, aspect_ratio: str
) -> None:
    avatar, scene, source = _setup(faces, name, aspect_ratio)
    width, height = canvas_size(aspect_ratio)
    landmarks = scene.landmarks
    assert landmarks is not None and scene.mask is not None
    scale, _ = placement(source, landmarks)
    box = landmarks.box
    outline = landmarks.group(face_model.FACE_OVAL)

    # Whole: the face box and the face's outline inside the canvas.
    assert 0 <= box.x0 and box.x1 <= width and box.y1 <= height
    assert outline.min() >= 0 and outline[:, 0].max() <= width and outline[:, 1].max() <= height
    # Head room: 0.35 face heights above the face box, or all the photo has above it.
    assert box.y0 >= min(0.35 * box.h, source.box.y0 * scale) - 1
    # Near the middle, unless the person is cut at one side of the photo (then that side is kept at the canvas's).
    cut = framing.person_edges(face.find_person_mask(avatar))
    if cut.left == cut.right:
        assert abs(box.cx - width / 2) < 0.1 * width
    # The person runs off the photo's bottom: on the canvas the body goes down to the bottom edge.
    if cut.bottom:
        assert float((scene.mask[-1] > 0.9).mean()) > 0.2


@pytest.mark.parametrize("aspect_ratio", FORMATS)
@pytest.mark.parametrize("name", FACES)
def test_the_face_is_where_the_scene_says_and_the_rig_covers_the_mouth(
    faces: dict[str, Path], name: str, aspect_ratio: str
) -> None:
    _, scene, _ = _setup(faces, name, aspect_ratio)
    found = face_model.detect_face(scene.canvas)
    assert found is not None and scene.landmarks is not None and scene.rig is not None
    corners = found.group(face_model.MOUTH_CORNERS)
    assert np.abs(corners - scene.landmarks.group(face_model.MOUTH_CORNERS)).max() <= 3
    lips = scene.landmarks.group(face_model.LIPS_OUTER)
    rect = scene.rig.rect
    assert rect.x <= lips[:, 0].min() and lips[:, 0].max() <= rect.x + rect.w
    assert rect.y <= lips[:, 1].min() and lips[:, 1].max() <= rect.y + rect.h
