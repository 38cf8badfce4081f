"""Faces on an RGB image with MediaPipe's short-range BlazeFace detector (`face_detection_short_range.tflite`).

Pre- and post-processing follow MediaPipe's `face_detection_short_range.pbtxt`: the image letterboxed into 128x128,
values in [-1, 1]; 896 SSD anchors (4 layers, strides 8/16/16/16, two anchors per cell, fixed size); box and six
keypoints decoded relative to the anchors with scale 128; sigmoid scores kept from 0.5; weighted non-maximum
suppression at IoU 0.3. Keypoints, in MediaPipe's order, are the subject's right eye, left eye, nose tip, mouth
centre, right ear tragion and left ear tragion (the subject's right eye is on the image's left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from services.renderer.tflite_model import model

MODEL: Final = "face_detection_short_range.tflite"
_SIZE: Final = 128
_STRIDES: Final = (8, 16, 16, 16)
_MIN_SCORE: Final = 0.5
_NMS_IOU: Final = 0.3

Rgb = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    keypoints: Floats  # 6x2 image pixels, in MediaPipe's order (see the module docstring)
    score: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def _anchors() -> Floats:
    """Anchor centres (x, y) in [0, 1], in the model's output order (SsdAnchorsCalculator, fixed_anchor_size)."""
    centres: list[tuple[float, float]] = []
    layer = 0
    while layer < len(_STRIDES):
        stride = _STRIDES[layer]
        same = sum(1 for s in _STRIDES[layer:] if s == stride)  # layers with one stride share a grid
        cells = -(-_SIZE // stride)
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * (2 * same))
        layer += same
    return np.array(centres, dtype=np.float32)


_ANCHORS: Final = _anchors()


def _iou(box: Floats, others: Floats) -> Floats:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), dtype=np.float32)


def _weighted_nms(boxes: Floats, keypoints: Floats, scores: Floats) -> list[tuple[Floats, Floats, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression: overlapping candidates are averaged by score."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.arange(len(scores))
    kept: list[tuple[Floats, Floats, float]] = []
    while len(remaining):
        overlap = _iou(boxes[remaining[0]], boxes[remaining]) > _NMS_IOU
        group = remaining[overlap]
        weights = scores[group][:, None]
        box = np.asarray((boxes[group] * weights).sum(0) / weights.sum(), dtype=np.float32)
        points = np.asarray((keypoints[group] * weights[:, :, None]).sum(0) / weights.sum(), dtype=np.float32)
        kept.append((box, points, float(scores[group[0]])))
        remaining = remaining[~overlap]
    return kept


def detect_faces(rgb: Rgb) -> list[Detection]:
    """Every face the detector finds on the image, most confident first."""
    height, width = rgb.shape[:2]
    scale = _SIZE / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    pad_x, pad_y = (_SIZE - new_w) // 2, (_SIZE - new_h) // 2
    canvas = np.zeros((_SIZE, _SIZE, 3), dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
    tensor = (canvas.astype(np.float32) / 127.5 - 1.0)[None]
    out = model(MODEL).run(tensor)
    raw, logits = out["regressors"][0], out["classificators"][0, :, 0]
    probability = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))
    keep = probability >= _MIN_SCORE
    if not keep.any():
        return []
    raw, scores, anchors = raw[keep], probability[keep].astype(np.float32), _ANCHORS[keep]
    centre = raw[:, 0:2] / _SIZE + anchors
    size = raw[:, 2:4] / _SIZE
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) / _SIZE + anchors[:, None, :]

    def to_image(xy: Floats) -> Floats:
        # Letterboxed [0, 1] coordinates back to the image's pixels.
        return np.asarray((xy * _SIZE - np.array([pad_x, pad_y], np.float32)) / scale, dtype=np.float32)

    found = []
    for box, points, score in _weighted_nms(boxes.astype(np.float32), keypoints.astype(np.float32), scores):
        corners = to_image(box.reshape(2, 2)).reshape(4)
        found.append(
            Detection(
                box=(float(corners[0]), float(corners[1]), float(corners[2]), float(corners[3])),
                keypoints=to_image(points),
                score=score,
            )
        )
    return found
