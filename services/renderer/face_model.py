"""A face mesh and a person mask for an RGB image, offline: MediaPipe's models run with LiteRT.

API (kept stable; the renderer's animation and `bench/liveness.py` build on it):

    detect_face(rgb: np.ndarray[H, W, 3] uint8) -> FaceLandmarks | None
        The LARGEST face on the image (by detector box area), or None when there is none.
        .points   float32 N x 2, image pixels (x right, y down), N = 478: MediaPipe's 468-point mesh plus
                  the irises at 468-477 (refined-mesh numbering)
        .depth    float32 N, relative depth in pixels (smaller is nearer the camera)
        .box      FaceBox(x0, y0, x1, y1): the detector's face box in pixels (.w .h .cx .cy)
        .keypoints float32 6 x 2: the detector's eyes, nose tip, mouth centre, ears (the subject's right first)
        .score    the detector's confidence, 0-1
        .roll     degrees the eye line is turned clockwise on screen
        .group(indices) -> float32 K x 2, the points of one index group below
    person_mask(rgb) -> float32 H x W in [0, 1], the person's probability per pixel

Index groups (tuples of point indices; "right"/"left" are the subject's, as in MediaPipe, so RIGHT_EYE is on the
image's left): LIPS_OUTER, LIPS_INNER (rings, from the right mouth corner along the lower lip), UPPER_LIP_INNER,
LOWER_LIP_INNER (the centre points 13 and 14), MOUTH_CORNERS (61, 291), RIGHT_EYE, LEFT_EYE (rings),
RIGHT_EYE_UPPER/LOWER, LEFT_EYE_UPPER/LOWER (lids, corner to corner), RIGHT_EYE_EAR, LEFT_EYE_EAR (the six points
p1..p6 of the eye aspect ratio), RIGHT_IRIS, LEFT_IRIS (centre first), NOSE_TIP, CHIN, FOREHEAD, FACE_OVAL.

Models: `services/renderer/models/` (see the README there). Each is loaded once per process; calls are thread-safe.
Measured on one core: `detect_face` about 8 ms (512x512 to 1920x1080), `person_mask` 5 ms at 512x512 and 13-22 ms
at 1080p; the first call loads the models (about 30 ms). Landmarks are still found once per avatar, not per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from services.renderer.face_detector import detect_faces
from services.renderer.face_mesh import mesh
from services.renderer.person_segmentation import person_mask

__all__ = [
    "CHIN",
    "FACE_OVAL",
    "FOREHEAD",
    "LEFT_EYE",
    "LEFT_EYE_EAR",
    "LEFT_EYE_LOWER",
    "LEFT_EYE_UPPER",
    "LEFT_IRIS",
    "LIPS_INNER",
    "LIPS_OUTER",
    "LOWER_LIP_INNER",
    "MOUTH_CORNERS",
    "NOSE_TIP",
    "RIGHT_EYE",
    "RIGHT_EYE_EAR",
    "RIGHT_EYE_LOWER",
    "RIGHT_EYE_UPPER",
    "RIGHT_IRIS",
    "UPPER_LIP_INNER",
    "FaceBox",
    "FaceLandmarks",
    "detect_face",
    "person_mask",
]

Rgb = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]

LIPS_OUTER: Final = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER: Final = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
UPPER_LIP_INNER: Final = (13,)
LOWER_LIP_INNER: Final = (14,)
MOUTH_CORNERS: Final = (61, 291)
RIGHT_EYE_UPPER: Final = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER: Final = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER: Final = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER: Final = (263, 249, 390, 373, 374, 380, 381, 382, 362)
RIGHT_EYE: Final = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE: Final = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE_EAR: Final = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR: Final = (362, 385, 387, 263, 373, 380)
RIGHT_IRIS: Final = (468, 469, 470, 471, 472)
LEFT_IRIS: Final = (473, 474, 475, 476, 477)
NOSE_TIP: Final = (1,)
CHIN: Final = (152,)
FOREHEAD: Final = (10,)
FACE_OVAL: Final = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


@dataclass(frozen=True)
class FaceBox:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    points: Floats
    depth: Floats
    box: FaceBox
    keypoints: Floats
    score: float

    def group(self, indices: tuple[int, ...]) -> Floats:
        return np.asarray(self.points[list(indices)], dtype=np.float32)

    @property
    def roll(self) -> float:
        right, left = self.group(RIGHT_EYE).mean(0), self.group(LEFT_EYE).mean(0)
        return math.degrees(math.atan2(float(left[1] - right[1]), float(left[0] - right[0])))


def detect_face(rgb: Rgb) -> FaceLandmarks | None:
    """The largest face's landmarks on an RGB image (HxWx3 uint8), or None when no face is found."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"detect_face needs an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    faces = detect_faces(rgb)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.area)
    found = mesh(rgb, face)
    if found.presence < 0.5:
        return None
    return FaceLandmarks(
        points=found.points, depth=found.depth, box=FaceBox(*face.box), keypoints=face.keypoints, score=face.score
    )
