"""The offline face mesh and person mask (services/renderer/face_model.py) on real pictures of several shapes.

The pictures: the example avatar (square, scikit-image's astronaut), a tall 9:16 crop of it, a mirrored and rotated
close-up, the face twice at two sizes, and pictures without a face. Checks are geometric (lips under the eyes,
irises between the lids, points inside the detector's box), so no threshold is tuned to one picture.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from services.renderer import face_model as fm
from services.renderer.face import find_landmarks, find_person_mask, load_rgb
from services.renderer.face_detector import detect_faces

EXAMPLE = Path(__file__).parents[2] / "examples" / "avatar.jpg"

Rgb = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def avatar() -> Rgb:
    return load_rgb(EXAMPLE)


def _tall(avatar: Rgb) -> Rgb:
    """A 9:16 portrait: a 288x512 column of the photo around the person, doubled to 576x1024."""
    column = avatar[:, 100:388]
    return np.asarray(cv2.resize(column, (576, 1024), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def _close_up(avatar: Rgb, degrees: float) -> Rgb:
    """A square 400x400 close-up of the head, mirrored, turned `degrees` counter-clockwise on screen."""
    head = np.ascontiguousarray(avatar[20:260, 105:345][:, ::-1])
    head = np.asarray(cv2.resize(head, (400, 400), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    turn = cv2.getRotationMatrix2D((200.0, 200.0), degrees, 1.0)
    return np.asarray(cv2.warpAffine(head, turn, (400, 400), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)


def _two_faces(avatar: Rgb) -> tuple[Rgb, tuple[int, int, int, int]]:
    """A 1000x600 picture with the head pasted large on the right and small on the left; the large one's area."""
    head = avatar[40:220, 140:320]
    canvas = np.full((600, 1000, 3), 150, dtype=np.uint8)
    small = cv2.resize(head, (300, 300), interpolation=cv2.INTER_AREA)
    large = cv2.resize(head, (520, 520), interpolation=cv2.INTER_CUBIC)
    canvas[200:500, 40:340] = small
    canvas[40:560, 440:960] = large
    return canvas, (440, 40, 960, 560)


def _check_on_face(face: fm.FaceLandmarks, shape: tuple[int, ...]) -> None:
    points = face.points
    assert points.shape == (478, 2) and points.dtype == np.float32
    assert face.depth.shape == (478,)
    height, width = shape[:2]
    assert (points >= 0).all() and (points[:, 0] < width).all() and (points[:, 1] < height).all()
    box = face.box
    pad = 0.15 * box.w  # the mesh's oval reaches a little past the detector's box (forehead, jaw)
    inner = np.concatenate([face.group(g) for g in (fm.LIPS_INNER, fm.RIGHT_EYE, fm.LEFT_EYE, fm.NOSE_TIP)])
    assert (inner[:, 0] > box.x0 - pad).all() and (inner[:, 0] < box.x1 + pad).all()
    assert (inner[:, 1] > box.y0 - pad).all() and (inner[:, 1] < box.y1 + pad).all()

    # In the face's own upright frame: eyes above the nose tip above the mouth above the chin, subject's right eye
    # on the image's left.
    turn = np.radians(face.roll)
    upright = np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]], dtype=np.float32)

    def at(group: tuple[int, ...]) -> npt.NDArray[np.float32]:
        return np.asarray(face.group(group) @ upright.T, dtype=np.float32)

    eyes_y = min(at(fm.RIGHT_EYE)[:, 1].max(), at(fm.LEFT_EYE)[:, 1].max())
    assert eyes_y < at(fm.NOSE_TIP)[0, 1] < at(fm.LIPS_OUTER)[:, 1].min()
    assert at(fm.LIPS_OUTER)[:, 1].max() < at(fm.CHIN)[0, 1]
    assert at(fm.FOREHEAD)[0, 1] < at(fm.RIGHT_EYE)[:, 1].min()
    assert at(fm.RIGHT_EYE)[:, 0].max() < at(fm.LEFT_EYE)[:, 0].min()

    # The inner lip lies within the outer lip; the mouth corners bound both.
    outer, inner_lip = at(fm.LIPS_OUTER), at(fm.LIPS_INNER)
    assert outer[:, 0].min() <= inner_lip[:, 0].min() and inner_lip[:, 0].max() <= outer[:, 0].max()
    assert outer[:, 1].min() < inner_lip[:, 1].min() and inner_lip[:, 1].max() < outer[:, 1].max()

    # Each iris centre sits between its eye's corners and lids, and its radius is a fraction of the eye's width.
    for iris, upper, lower, eye in (
        (fm.RIGHT_IRIS, fm.RIGHT_EYE_UPPER, fm.RIGHT_EYE_LOWER, fm.RIGHT_EYE),
        (fm.LEFT_IRIS, fm.LEFT_EYE_UPPER, fm.LEFT_EYE_LOWER, fm.LEFT_EYE),
    ):
        centre, ring = at(iris)[0], at(iris)[1:]
        corners_x = at(eye)[:, 0]
        assert corners_x.min() < centre[0] < corners_x.max()
        assert at(upper)[1:-1, 1].min() < centre[1] < at(lower)[1:-1, 1].max()
        eye_width = corners_x.max() - corners_x.min()
        radius = float(np.linalg.norm(ring - centre, axis=1).mean())
        assert 0.15 * eye_width < radius < 0.45 * eye_width


def test_the_mesh_lands_on_the_example_avatar(avatar: Rgb) -> None:
    face = fm.detect_face(avatar)
    assert face is not None
    _check_on_face(face, avatar.shape)
    assert face.score > 0.8
    assert abs(face.roll) < 8  # a near-level portrait


def test_the_mesh_lands_on_a_tall_portrait_and_follows_the_scale(avatar: Rgb) -> None:
    square = fm.detect_face(avatar)
    tall = _tall(avatar)
    face = fm.detect_face(tall)
    assert square is not None and face is not None
    _check_on_face(face, tall.shape)
    # The same face, moved left by 100 px and scaled by 2: the mesh follows to within a few pixels of the face.
    expected = (square.points - np.array([100.0, 0.0], np.float32)) * 2
    error = np.linalg.norm(face.points - expected, axis=1)
    assert float(np.median(error)) < 0.03 * face.box.w


def test_a_small_face_on_a_tall_picture_is_found_and_placed_as_on_the_photo(avatar: Rgb) -> None:
    # The photo at 512 px on a 1080x1920 canvas: the face is 1/20 of the long side, too small for the detector's
    # 128 px view of the whole picture.
    canvas = np.full((1920, 1080, 3), 120, dtype=np.uint8)
    canvas[300:812, 284:796] = avatar
    square = fm.detect_face(avatar)
    face = fm.detect_face(canvas)
    assert square is not None and face is not None
    _check_on_face(face, canvas.shape)
    expected = square.points + np.array([284.0, 300.0], np.float32)
    assert float(np.median(np.linalg.norm(face.points - expected, axis=1))) < 0.03 * square.box.w
    assert abs(face.box.w - square.box.w) < 0.1 * square.box.w


def test_the_mesh_follows_a_mirrored_turned_close_up(avatar: Rgb) -> None:
    level = fm.detect_face(_close_up(avatar, 0.0))
    turned_image = _close_up(avatar, 15.0)
    turned = fm.detect_face(turned_image)
    assert level is not None and turned is not None
    _check_on_face(level, (400, 400))
    _check_on_face(turned, turned_image.shape)
    # Mirroring swaps the sides (the subject's right eye is still on the image's left) and the roll's sign.
    upright = fm.detect_face(avatar)
    assert upright is not None
    assert abs(level.roll + upright.roll) < 2.5
    # Turning the picture 15 degrees counter-clockwise turns the eye line the same way.
    assert abs((turned.roll - level.roll) + 15.0) < 3.0


def _eye_aspect_ratio(face: fm.FaceLandmarks, six: tuple[int, ...]) -> float:
    p = face.group(six)
    vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
    return float(vertical / (2 * np.linalg.norm(p[0] - p[3])))


def test_the_eyelids_tell_open_eyes_from_shut_ones(avatar: Rgb) -> None:
    face = fm.detect_face(avatar)
    assert face is not None
    # The eyes painted shut: each eye's opening filled from the skin around it, a lash line along the lower lid.
    opening = np.zeros(avatar.shape[:2], np.uint8)
    for eye in (fm.RIGHT_EYE, fm.LEFT_EYE):
        cv2.fillPoly(opening, [np.round(face.group(eye)).astype(np.int32)], 255)
    shut = cv2.inpaint(avatar, cv2.dilate(opening, np.ones((3, 3), np.uint8)), 5, cv2.INPAINT_TELEA)
    for lid in (fm.RIGHT_EYE_LOWER, fm.LEFT_EYE_LOWER):
        cv2.polylines(shut, [np.round(face.group(lid)).astype(np.int32)], False, (70, 50, 45), 1, cv2.LINE_AA)
    closed = fm.detect_face(np.asarray(shut, dtype=np.uint8))
    assert closed is not None
    for six in (fm.RIGHT_EYE_EAR, fm.LEFT_EYE_EAR):
        assert 0.25 < _eye_aspect_ratio(face, six) < 0.5  # open
        assert _eye_aspect_ratio(closed, six) < 0.6 * _eye_aspect_ratio(face, six)


def test_of_two_faces_the_larger_one_is_taken(avatar: Rgb) -> None:
    picture, (x0, y0, x1, y1) = _two_faces(avatar)
    assert len(detect_faces(picture)) == 2  # both are seen
    face = fm.detect_face(picture)
    assert face is not None
    _check_on_face(face, picture.shape)
    points = face.points
    assert (points[:, 0] > x0).all() and (points[:, 0] < x1).all()
    assert (points[:, 1] > y0).all() and (points[:, 1] < y1).all()


def test_a_picture_without_a_face_gives_none() -> None:
    rows = np.linspace(0, 255, 480, dtype=np.float32)[:, None, None]
    gradient = np.broadcast_to(rows, (480, 640, 3)).astype(np.uint8)
    noise = np.random.default_rng(7).integers(0, 256, (512, 384, 3), dtype=np.uint8)
    assert fm.detect_face(np.ascontiguousarray(gradient)) is None
    assert fm.detect_face(noise) is None


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        fm.detect_face(np.zeros((64, 64), dtype=np.uint8))


def test_the_person_mask_covers_the_person_not_the_background(avatar: Rgb) -> None:
    for picture in (avatar, _tall(avatar), _two_faces(avatar)[0]):
        mask = fm.person_mask(picture)
        height, width = picture.shape[:2]
        assert mask.shape == (height, width) and mask.dtype == np.float32
        assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0
        face = fm.detect_face(picture)
        assert face is not None
        for x, y in face.group(fm.NOSE_TIP + fm.FOREHEAD + fm.CHIN):
            assert mask[int(y), int(x)] > 0.9
        corner = max(8, min(height, width) // 12)
        assert float(mask[:corner, :corner].mean()) < 0.1
        assert float(mask[:corner, -corner:].mean()) < 0.1
    # On the avatar the torso below the face is the person too.
    mask = fm.person_mask(avatar)
    assert float(mask[300:400, 150:300].mean()) > 0.9


def test_calls_are_fast_and_safe_from_several_threads(avatar: Rgb) -> None:
    expected = fm.detect_face(avatar)
    assert expected is not None
    started = time.perf_counter()
    results: list[fm.FaceLandmarks | None] = []

    def run() -> None:
        for _ in range(3):
            results.append(fm.detect_face(avatar))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert len(results) == 12
    for found in results:
        assert found is not None and np.array_equal(found.points, expected.points)
    assert elapsed / 12 < 0.5  # about 10-30 ms each on one core; generous for a loaded CI machine


def test_the_renderer_finds_the_face_once_per_avatar_and_the_larger_of_two(avatar: Rgb, tmp_path: Path) -> None:
    face = find_landmarks(EXAMPLE)
    assert face is not None
    assert find_landmarks(EXAMPLE) is face  # cached per file content
    mask = find_person_mask(EXAMPLE)
    assert find_person_mask(EXAMPLE) is mask and mask.shape == avatar.shape[:2]

    # With two faces on the avatar, the larger one speaks.
    picture, (x0, y0, x1, y1) = _two_faces(avatar)
    two = tmp_path / "two.png"
    cv2.imwrite(str(two), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    speaking = find_landmarks(two)
    assert speaking is not None
    lips = speaking.group(fm.LIPS_OUTER)
    assert x0 < lips[:, 0].min() and lips[:, 0].max() < x1
    assert y0 < lips[:, 1].min() and lips[:, 1].max() < y1
