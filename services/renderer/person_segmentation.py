"""Where the person is on an RGB image, with MediaPipe's selfie segmentation.

As in MediaPipe's `selfie_segmentation_cpu.pbtxt`: the whole image resized (no letterbox) to the model's input,
values in [0, 1]; the output is the person's probability per pixel, resized back to the image bilinearly.
Landscape images use `selfie_segmentation_landscape.tflite` (256x144), others the general 256x256 model.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from services.renderer.tflite_model import model

GENERAL: Final = "selfie_segmentation.tflite"
LANDSCAPE: Final = "selfie_segmentation_landscape.tflite"

Rgb = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.float32]


def person_mask(rgb: Rgb) -> Mask:
    """The person's probability per pixel (float32, HxW, 0-1)."""
    height, width = rgb.shape[:2]
    segmenter = model(LANDSCAPE if width > height else GENERAL)
    _, in_h, in_w, _ = segmenter.input_shape
    tensor = np.asarray(cv2.resize(rgb, (in_w, in_h), interpolation=cv2.INTER_AREA), dtype=np.float32) / 255.0
    (out,) = segmenter.run(tensor[None]).values()
    small = np.ascontiguousarray(out.reshape(in_h, in_w))
    mask = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
