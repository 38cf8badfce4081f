"""The avatar's face, found once per avatar: MediaPipe's face mesh (`services.renderer.face_model`; the largest face
when there are several) and the person's segmentation mask.

Coordinates are avatar pixels after EXIF orientation, as the renderer composes it. Results are cached per file
content (SHA-256) within the process: every clip of a job uses the same avatar.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from services.renderer import face_model

Rgb = npt.NDArray[np.uint8]


def load_rgb(avatar: Path) -> Rgb:
    """The avatar as 8-bit RGB, upright (EXIF orientation applied), transparent areas on mid grey."""
    with Image.open(avatar) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGBA")
    flat = Image.new("RGBA", image.size, (128, 128, 128, 255))
    flat.alpha_composite(image)
    return np.asarray(flat.convert("RGB"), dtype=np.uint8)


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
