"""Find the face and the mouth on an avatar photo, offline: MediaPipe's face mesh first, OpenCV's Haar cascades after.

The mesh (`services.renderer.face_model`, the largest face when there are several): the face box is the detector's,
the mouth box the outer lip landmarks' bounds, and the parting line a parabola through the upper lip's inner edge
(the lip line of closed lips, or in a smile the edge above the teeth). `find_landmarks` and `find_person_mask` give
the whole mesh and the person's mask, cached the same way.

When the mesh finds no face, the Haar path. The face: `haarcascade_frontalface_alt2` (few false positives), then
`haarcascade_frontalface_default` when alt2 finds nothing; the largest face wins. The mouth: `haarcascade_smile` run
inside the lower part of the face box, keeping only a detection that is centred under the face and sized like a
mouth. The smile cascade misses closed, neutral mouths often, so when it finds nothing plausible the mouth is a
geometric estimate from the face box (Haar face boxes put the mouth centre at about 80 % of the box height, about
40 % of the box wide). `Mouth.source` says which one was used.

Where the mouth opens on the Haar path (`Mouth.lip_y`, `Mouth.lip_lift`): the darkest line across the mouth box,
fitted with a parabola, which is the crease between closed lips or, in a smile, the shadow between upper lip and
teeth.

Coordinates are avatar pixels after EXIF orientation, as the renderer composes it. Results are cached per file
content (SHA-256) within the process: every clip of a job uses the same avatar.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from services.renderer import face_model

# Detection runs on a copy no larger than this: Haar cascades need no more, and a 4000 px photo would take seconds.
_DETECT_MAX_SIDE: Final = 1024
_FACE_CASCADES: Final = ("haarcascade_frontalface_alt2.xml", "haarcascade_frontalface_default.xml")
_SMILE_CASCADE: Final = "haarcascade_smile.xml"
# Where a mouth sits in a Haar face box, as fractions of the box: centre x, centre y, width, height.
_MOUTH_ESTIMATE: Final = (0.5, 0.80, 0.42, 0.18)

Gray = npt.NDArray[np.uint8]
Rgb = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def scaled(self, factor: float) -> Box:
        return Box(round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor))


@dataclass(frozen=True)
class Mouth:
    face: Box
    box: Box
    lip_y: float  # where the lips part at the mouth's centre (pixel centres at .5)
    lip_lift: float  # how much higher the parting line is at the corners of the mouth box (a smile curves up)
    source: Literal["mesh", "smile", "estimate"]


_cascades: dict[str, cv2.CascadeClassifier] = {}
_cascades_lock = threading.Lock()


def _cascade(name: str) -> cv2.CascadeClassifier:
    # A CascadeClassifier is not safe to share between threads that detect at the same time; one lock keeps this
    # simple, and detection takes ~0.1 s once per avatar.
    if name not in _cascades:
        classifier = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))  # type: ignore[attr-defined]
        if classifier.empty():
            raise RuntimeError(f"OpenCV cascade {name} is missing")
        _cascades[name] = classifier
    return _cascades[name]


def load_rgb(avatar: Path) -> Rgb:
    """The avatar as 8-bit RGB, upright (EXIF orientation applied), transparent areas on mid grey."""
    with Image.open(avatar) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGBA")
    flat = Image.new("RGBA", image.size, (128, 128, 128, 255))
    flat.alpha_composite(image)
    return np.asarray(flat.convert("RGB"), dtype=np.uint8)


def _largest_face(gray: Gray) -> Box | None:
    side = min(gray.shape)
    min_size = max(24, side // 12)
    for name in _FACE_CASCADES:
        found = _cascade(name).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
        if len(found):
            x, y, w, h = max(found, key=lambda r: int(r[2]) * int(r[3]))
            return Box(int(x), int(y), int(w), int(h))
    return None


def _smile(gray: Gray, face: Box) -> Box | None:
    """A smile-cascade detection in the lower part of the face that is centred and sized like a mouth, or None."""
    height, width = gray.shape
    x0, x1 = max(0, face.x + face.w // 8), min(width, face.x + face.w - face.w // 8)
    y0, y1 = max(0, face.y + face.h * 3 // 5), min(height, face.y + face.h + face.h // 8)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    roi = gray[y0:y1, x0:x1]
    found, neighbours = _cascade(_SMILE_CASCADE).detectMultiScale2(
        roi, scaleFactor=1.05, minNeighbors=8, minSize=(max(8, face.w // 5), max(4, face.h // 12))
    )
    best: tuple[int, Box] | None = None
    for (x, y, w, h), votes in zip(found, neighbours, strict=True):
        box = Box(int(x) + x0, int(y) + y0, int(w), int(h))
        centred = abs(box.cx - face.cx) < 0.12 * face.w
        sized = 0.25 * face.w <= box.w <= 0.7 * face.w and box.cy > face.y + 0.65 * face.h
        if centred and sized and (best is None or int(votes) > best[0]):
            best = (int(votes), box)
    return best[1] if best else None


def _estimate(face: Box) -> Box:
    fx, fy, fw, fh = _MOUTH_ESTIMATE
    w, h = round(fw * face.w), round(fh * face.h)
    return Box(round(face.x + fx * face.w - w / 2), round(face.y + fy * face.h - h / 2), w, h)


def _parting(gray: Gray, mouth: Box) -> tuple[float, float]:
    """Where the lips part: the row at the mouth's centre, and how much higher the line is at the mouth corners.

    Column by column across the middle of the mouth box, the darkest pixel: the crease between closed lips, or in a
    smile the shadow line between upper lip and teeth (the teeth then move down with the jaw and read as the lower
    teeth of an open mouth). A parabola through those rows, refitted without outliers, gives the centre row and the
    lift at the corners (a smile curves up).
    """
    height, width = gray.shape
    y0, y1 = max(0, mouth.y + mouth.h // 8), min(height, mouth.y + mouth.h - mouth.h // 8)
    x0, x1 = max(0, mouth.x + mouth.w // 8), min(width, mouth.x + mouth.w - mouth.w // 8)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return mouth.cy, 0.0
    luma = cv2.GaussianBlur(gray[y0:y1, x0:x1], (3, 3), 0).astype(np.float32)
    dx = np.arange(x0, x1) + 0.5 - mouth.cx
    dy = y0 + np.argmin(luma, axis=0) + 0.5
    keep = np.ones(len(dx), bool)
    coeffs = np.array([0.0, 0.0, mouth.cy])
    for _ in range(3):
        if keep.sum() < 3:
            break
        coeffs = np.polyfit(dx[keep], dy[keep], 2)
        residual = np.abs(np.polyval(coeffs, dx) - dy)
        keep = residual <= max(1.5, 2 * float(np.median(residual[keep])))
    centre = float(np.polyval(coeffs, 0.0))
    lift = -float(coeffs[0]) * (mouth.w / 2) ** 2  # y grows downwards: corners above the centre lift > 0
    if not np.isfinite(centre) or not y0 <= centre <= y1:
        return mouth.cy, 0.0
    return centre, float(np.clip(lift, -0.15 * mouth.h, 0.6 * mouth.h))


def detect(rgb: Rgb) -> Mouth | None:
    """The face and the mouth on an RGB image, or None when there is no frontal face."""
    gray = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    scale = min(1.0, _DETECT_MAX_SIDE / max(gray.shape))
    if scale < 1.0:
        gray_small = np.asarray(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8)
    else:
        gray_small = gray
    small = np.asarray(cv2.equalizeHist(gray_small), dtype=np.uint8)
    with _cascades_lock:
        face = _largest_face(small)
        smile = _smile(small, face) if face is not None else None
    if face is None:
        return None
    source: Literal["smile", "estimate"] = "smile" if smile is not None else "estimate"
    box = (smile or _estimate(face)).scaled(1 / scale)
    face = face.scaled(1 / scale)
    lip_y, lip_lift = _parting(gray, box)
    return Mouth(face=face, box=box, lip_y=lip_y, lip_lift=lip_lift, source=source)


# The upper lip's inner edge, corner to corner through the centre (13): where the lips part.
_UPPER_LIP_INNER_EDGE: Final = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)


def from_landmarks(landmarks: face_model.FaceLandmarks) -> Mouth:
    """The face box, mouth box and parting line of a face mesh, in the same terms as the Haar path's."""
    face_box = landmarks.box
    face = Box(round(face_box.x0), round(face_box.y0), round(face_box.w), round(face_box.h))
    lips = landmarks.group(face_model.LIPS_OUTER)
    x0, y0 = np.floor(lips.min(0)).astype(int).tolist()
    x1, y1 = np.ceil(lips.max(0)).astype(int).tolist()
    box = Box(x0, y0, x1 - x0, y1 - y0)
    edge = landmarks.group(_UPPER_LIP_INNER_EDGE)
    coeffs = np.polyfit(edge[:, 0] - box.cx, edge[:, 1], 2)
    centre = float(np.polyval(coeffs, 0.0))
    lift = float(np.clip(-float(coeffs[0]) * (box.w / 2) ** 2, -0.15 * box.h, 0.6 * box.h))
    return Mouth(face=face, box=box, lip_y=centre, lip_lift=lift, source="mesh")


class _Cache:
    """Values computed once per avatar file content (SHA-256), oldest dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, object]:
        with self._lock:
            return (digest in self._values, self._values.get(digest))

    def put(self, digest: str, value: object) -> None:
        with self._lock:
            if digest not in self._values and len(self._values) >= self._size:
                self._values.pop(next(iter(self._values)))  # a renderer process sees a handful of avatars at a time
            self._values[digest] = value


_mouths: Final = _Cache(64)
_landmarks: Final = _Cache(64)
_masks: Final = _Cache(4)  # a mask is a float per pixel


def _digest(avatar: Path) -> str:
    return hashlib.sha256(avatar.read_bytes()).hexdigest()


def find_landmarks(avatar: Path) -> face_model.FaceLandmarks | None:
    """The face mesh of the avatar file's largest face, cached per file content; None when no face is found."""
    digest = _digest(avatar)
    known, value = _landmarks.get(digest)
    if not known:
        value = face_model.detect_face(load_rgb(avatar))
        _landmarks.put(digest, value)
    assert value is None or isinstance(value, face_model.FaceLandmarks)
    return value


def find_person_mask(avatar: Path) -> npt.NDArray[np.float32]:
    """The person's probability per pixel of the avatar file (HxW float32, 0-1), cached per file content."""
    digest = _digest(avatar)
    known, value = _masks.get(digest)
    if not known:
        value = face_model.person_mask(load_rgb(avatar))
        _masks.put(digest, value)
    assert isinstance(value, np.ndarray)
    return value


def find_mouth(avatar: Path) -> Mouth | None:
    """The face and mouth on the avatar file, cached per file content; None when no face is found."""
    digest = _digest(avatar)
    known, value = _mouths.get(digest)
    if not known:
        landmarks = find_landmarks(avatar)
        value = from_landmarks(landmarks) if landmarks is not None else detect(load_rgb(avatar))
        _mouths.put(digest, value)
    assert value is None or isinstance(value, Mouth)
    return value
