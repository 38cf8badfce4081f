"""MediaPipe's face mesh on one detected face: 468 landmarks from `face_landmark.tflite`, plus 10 iris points.

As in MediaPipe's `face_detection_front_detection_to_roi.pbtxt` and `face_landmark_cpu.pbtxt`: the detection's box,
made square on its long side and scaled by 1.5, rotated so the line between the eye keypoints is level, is cropped
to 192x192 with values in [0, 1]; the model returns 468 (x, y, z) in crop pixels and a face-presence logit (a face
when its sigmoid is at least 0.5), and the points are mapped back through the crop's rotation.

The irises follow `iris_landmark_left_and_right_cpu.pbtxt` / `iris_landmark_cpu.pbtxt`: each eye's crop is the
square around its two corner landmarks (33-133 and 362-263) scaled by 2.3, rotated level, 64x64 in [0, 1], the
subject's left eye mirrored because the model knows one eye only; its five iris points (centre first) are appended
as 468-472 (the subject's right eye) and 473-477 (the left), MediaPipe's refined-mesh numbering.
(`face_landmark_with_attention.tflite` gives the same 478 but needs MediaPipe's custom ops, which LiteRT lacks.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from services.renderer.face_detector import Detection
from services.renderer.tflite_model import model

MESH_MODEL: Final = "face_landmark.tflite"
IRIS_MODEL: Final = "iris_landmark.tflite"
_MESH_SIZE: Final = 192
_IRIS_SIZE: Final = 64
_FACE_SCALE: Final = 1.5
_EYE_SCALE: Final = 2.3
_EYE_CORNERS: Final = ((33, 133, False), (362, 263, True))  # (from, to, mirrored) for the right, then left eye

Rgb = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Roi:
    """A square crop of the image: centre and side in pixels, rotation in radians (clockwise on screen)."""

    cx: float
    cy: float
    side: float
    angle: float

    def to_image(self, size: int) -> npt.NDArray[np.float64]:
        """The 2x3 affine map from a size x size crop's pixels to the image's pixels."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        k = self.side / size
        # p = centre + R @ ((q - size/2) * k)
        return np.array(
            [
                [cos * k, -sin * k, self.cx - (cos - sin) * self.side / 2],
                [sin * k, cos * k, self.cy - (sin + cos) * self.side / 2],
            ]
        )


def _roi(start: Floats, end: Floats, box: tuple[float, float, float, float], scale: float) -> Roi:
    """MediaPipe's DetectionsToRects + RectTransformation: box centre, long side x scale, level from start to end."""
    x0, y0, x1, y1 = box
    angle = -math.atan2(-(float(end[1]) - float(start[1])), float(end[0]) - float(start[0]))
    angle = (angle + math.pi) % (2 * math.pi) - math.pi
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * scale, angle)


def _crop(rgb: Rgb, roi: Roi, size: int, mirror: bool = False) -> tuple[Floats, npt.NDArray[np.float64]]:
    """The roi as a size x size float tensor in [0, 1], and the map from its pixels to the image's."""
    to_image = roi.to_image(size)
    if mirror:
        flip = np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        to_image = to_image @ flip
    crop = cv2.warpAffine(
        rgb, to_image, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(crop, dtype=np.float32) / 255.0, to_image


def _project(points: Floats, to_image: npt.NDArray[np.float64]) -> Floats:
    return np.asarray(points[:, :2] @ to_image[:, :2].T + to_image[:, 2], dtype=np.float32)


@dataclass(frozen=True)
class Mesh:
    points: Floats  # 478x2 image pixels
    depth: Floats  # 478 relative depths in image pixels (smaller is nearer the camera)
    presence: float  # the landmark model's face score, 0-1


def _irises(rgb: Rgb, points: Floats) -> Floats:
    irises = []
    for start, end, mirror in _EYE_CORNERS:
        a, b = points[start], points[end]
        corners = np.stack([a, b])
        box = (*corners.min(0).tolist(), *corners.max(0).tolist())
        tensor, to_image = _crop(rgb, _roi(a, b, (box[0], box[1], box[2], box[3]), _EYE_SCALE), _IRIS_SIZE, mirror)
        iris = model(IRIS_MODEL).run(tensor[None])["output_iris"].reshape(5, 3)
        irises.append(_project(iris, to_image))
    return np.concatenate(irises).astype(np.float32)


def mesh(rgb: Rgb, face: Detection) -> Mesh:
    """The 478 landmarks of the detected face."""
    roi = _roi(face.keypoints[0], face.keypoints[1], face.box, _FACE_SCALE)
    tensor, to_image = _crop(rgb, roi, _MESH_SIZE)
    out = model(MESH_MODEL).run(tensor[None])
    raw = out["conv2d_21"].reshape(468, 3)
    presence = 1.0 / (1.0 + math.exp(-float(out["conv2d_31"].reshape(-1)[0])))
    points = _project(raw, to_image)
    depth = raw[:, 2] * (roi.side / _MESH_SIZE)
    irises = _irises(rgb, points)
    iris_depth = np.repeat([depth[33], depth[263]], 5).astype(np.float32)  # irises sit at the eye corners' depth
    return Mesh(
        points=np.concatenate([points, irises]).astype(np.float32),
        depth=np.concatenate([depth, iris_depth]).astype(np.float32),
        presence=presence,
    )
