"""The canvas behind the person: the photo's own background, with the person taken out, continued to every edge.

Two layers, composited once per clip:

* Background, made small (canvas / `_LOW`; it is blurred anyway, and small is fast): the photo with the person
  painted out (`cv2.inpaint` where the person mask is, grown a little so no outline is left), mapped onto the canvas
  with the photo mirrored about its edges wherever the canvas reaches beyond it, then blurred: lightly over the
  photo, more the further out (a mirror image far from the photo would read as a copy; close to it, the mirror is
  what keeps the colours continuous across the photo's edge, so no seam and no rectangle shows). Scaled up smoothly.
  Inpainting matters beyond the halo around the person: the face rig moves the head and reveals what was behind it.
* Person: the photo at full resolution, sharp, over the background through a soft alpha made from the person mask.
  Where a photo edge that cuts the person lies inside the canvas (framing could not avoid it), the alpha fades out
  towards that edge instead of ending on a straight line.

Without a trustworthy mask (no face; or a segmentation that does not cover the face: drawings, unusual photos) the
whole photo is the sharp layer, faded out over `_FEATHER` at its edges inside the canvas, over its own mirrored,
blurred continuation: the picture the user gave is never blurred.
"""

from __future__ import annotations

from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from services.renderer.face_model import FaceBox
from services.renderer.framing import Framing

Rgb = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]
Array = npt.NDArray[Any]  # an image of either kind: RGB uint8 or a float32 mask

_LOW: Final = 6  # canvas pixels per background pixel
_BLUR_NEAR: Final = 1.2  # background blur over the photo, in background pixels (sigma)
_BLUR_FAR: Final = 5.0  # and far outside it
_FAR: Final = 0.35  # how far outside the photo (in canvas short sides) the blur is all _BLUR_FAR
_PERSON: Final = 0.12  # mask level painted out of the background (then grown by _GROW background pixels)
_GROW: Final = 2
# Alpha from the mask: 0 below _ALPHA_LOW, 1 above _ALPHA_HIGH (around the mask's 0.5 line; a lower start lets the
# segmentation's unsure patches on the background through as sharp fragments, e.g. the astronaut's flag).
_ALPHA_LOW: Final = 0.3
_ALPHA_HIGH: Final = 0.65
_FEATHER: Final = 0.06  # the fade at a photo edge inside the canvas, in canvas short sides
_FACE_COVERED: Final = 0.6  # a mask whose mean over the face box's middle is below this does not see the person


def mask_holds_face(mask: Floats, box: FaceBox) -> bool:
    """Whether the person mask covers the face: if not, segmentation failed on this picture."""
    height, width = mask.shape
    x0, x1 = int(max(0, box.cx - box.w / 4)), int(min(width, box.cx + box.w / 4 + 1))
    y0, y1 = int(max(0, box.cy - box.h / 4)), int(min(height, box.cy + box.h / 4 + 1))
    if x1 <= x0 or y1 <= y0:
        return False
    return float(mask[y0:y1, x0:x1].mean()) >= _FACE_COVERED


def _matrix(scale_x: float, scale_y: float, offset: tuple[float, float]) -> npt.NDArray[np.float64]:
    """The affine map from source pixel indices to destination pixel indices when source point u (pixel centres at
    .5) lands at `u * scale + offset` (same convention)."""
    ox, oy = offset
    return np.array([[scale_x, 0, ox + 0.5 * scale_x - 0.5], [0, scale_y, oy + 0.5 * scale_y - 0.5]])


def _warp(
    image: Array,
    framing: Framing,
    size: tuple[int, int],
    *,
    per_pixel: float = 1.0,
    interpolation: int = cv2.INTER_LINEAR,
    border: int = cv2.BORDER_CONSTANT,
) -> Array:
    """`image` (the photo at any resolution) placed per `framing` on a grid of `per_pixel` canvas pixels."""
    photo_w, photo_h = framing.photo
    height, width = image.shape[:2]
    sx = framing.scale * photo_w / width / per_pixel
    sy = framing.scale * photo_h / height / per_pixel
    offset = (framing.offset[0] / per_pixel, framing.offset[1] / per_pixel)
    warped: Array = cv2.warpAffine(image, _matrix(sx, sy, offset), size, flags=interpolation, borderMode=border)
    return warped


def _shrink(image: Array, factor: float) -> Array:
    height, width = image.shape[:2]
    size = (max(2, round(width * factor)), max(2, round(height * factor)))
    resized: Array = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return resized


def _outside(framing: Framing, size: tuple[int, int], per_pixel: float) -> Floats:
    """Distance outside the photo's rectangle, per grid pixel, in canvas pixels (0 over the photo)."""
    x0, y0, x1, y1 = framing.rect
    xs = (np.arange(size[0], dtype=np.float32) + 0.5) * per_pixel
    ys = (np.arange(size[1], dtype=np.float32) + 0.5) * per_pixel
    dx = np.maximum(np.maximum(x0 - xs, xs - x1), 0)[None, :]
    dy = np.maximum(np.maximum(y0 - ys, ys - y1), 0)[:, None]
    distance: Floats = np.sqrt(dx * dx + dy * dy).astype(np.float32)
    return distance


def _paint_out(small: Rgb, mask: Floats) -> Rgb:
    """`small` (the photo, shrunk) with the person painted over from the background around it.

    The painting runs at half of `small`'s resolution (its cost grows with the area painted, often half the photo),
    and only the painted pixels are taken from it.
    """
    height, width = small.shape[:2]
    fitted = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)
    kernel = np.ones((2 * _GROW + 1, 2 * _GROW + 1), np.uint8)
    person = cv2.dilate((np.asarray(fitted) > _PERSON).astype(np.uint8), kernel)
    half = (max(2, width // 2), max(2, height // 2))
    # A half-resolution pixel is painted when any of its pixels is person (area-averaged above 0).
    person_half = (np.asarray(cv2.resize(person, half, interpolation=cv2.INTER_AREA)) > 0).astype(np.uint8)
    painted = cv2.inpaint(cv2.resize(small, half, interpolation=cv2.INTER_AREA), person_half, 3, cv2.INPAINT_TELEA)
    up = cv2.resize(painted, (width, height), interpolation=cv2.INTER_LINEAR)
    result: Rgb = np.where(person[..., None] > 0, up, small)
    return result


def _paste(image: Array, framing: Framing, interpolation: int) -> Array:
    """`image` (the photo, or a map over it) resized to the framing's size and pasted on a canvas-sized array of
    zeros: the exact placement of a snapped framing (`framing.snap`)."""
    width, height = framing.canvas
    size = framing.size
    resized = cv2.resize(image, size, interpolation=interpolation)
    out = np.zeros((height, width, *image.shape[2:]), image.dtype)
    ox, oy = round(framing.offset[0]), round(framing.offset[1])
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(width, ox + size[0]), min(height, oy + size[1])
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = resized[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return out


def _background(photo: Rgb, mask: Floats | None, framing: Framing) -> Rgb:
    width, height = framing.canvas
    low_size = (-(-width // _LOW), -(-height // _LOW))
    small = _shrink(photo, min(1.0, framing.scale / _LOW))
    if mask is not None:
        small = _paint_out(small, mask)
    # With the person painted out, mirroring continues the background; without, it would mirror the subject too
    # (a second face at the canvas's edge), so the photo's edges are stretched instead.
    border = cv2.BORDER_REFLECT if mask is not None else cv2.BORDER_REPLICATE
    low = _warp(small, framing, low_size, per_pixel=_LOW, border=border).astype(np.float32)
    near = cv2.GaussianBlur(low, (0, 0), _BLUR_NEAR)
    far = cv2.GaussianBlur(low, (0, 0), _BLUR_FAR)
    # 0 over the photo, 1 from _FAR canvas short sides out, smooth in between.
    t = np.clip(_outside(framing, low_size, _LOW) / (_FAR * min(width, height)), 0, 1)
    t = (t * t * (3 - 2 * t))[..., None]
    blended = near * (1 - t) + far * t
    full = cv2.resize(blended, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(np.clip(full + 0.5, 0, 255), np.uint8)


def _edge_fade(framing: Framing) -> Floats:
    """1 inside the photo, falling to 0 at each of its edges that lies inside the canvas (over _FEATHER)."""
    width, height = framing.canvas
    x0, y0, x1, y1 = framing.rect
    shown = framing.visible_edges()
    ramp = _FEATHER * min(width, height)
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    fx = np.ones(width, np.float32)
    fy = np.ones(height, np.float32)
    if shown.left:
        fx *= np.clip((xs - x0) / ramp, 0, 1)
    if shown.right:
        fx *= np.clip((x1 - xs) / ramp, 0, 1)
    if shown.top:
        fy *= np.clip((ys - y0) / ramp, 0, 1)
    if shown.bottom:
        fy *= np.clip((y1 - ys) / ramp, 0, 1)
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    fade: Floats = (fy[:, None] * fx[None, :]).astype(np.float32)
    return fade


def _alpha(mask: Floats | None, framing: Framing) -> Floats:
    width, height = framing.canvas
    if mask is None:
        alpha = np.ones((height, width), np.float32)
    else:
        placed = _paste(mask, framing, cv2.INTER_LINEAR)
        alpha = np.clip((placed - _ALPHA_LOW) / (_ALPHA_HIGH - _ALPHA_LOW), 0, 1)
        alpha = alpha * alpha * (3 - 2 * alpha)
    # Outside the photo the person layer is empty (a constant border): the fade covers the photo's visible edges.
    faded: Floats = (alpha * _edge_fade(framing)).astype(np.float32)
    return faded


def compose(photo: Rgb, mask: Floats | None, framing: Framing) -> tuple[Rgb, Floats]:
    """The canvas (RGB, framing.canvas in size) and the sharp layer's alpha on it (float32 0-1: the person, or the
    whole photo without a mask). `mask`: the person's probability per photo pixel, or None."""
    background = _background(photo, mask, framing)
    # Cubic up (sharp), area-averaged down (no aliasing).
    person = _paste(photo, framing, cv2.INTER_CUBIC if framing.scale >= 1 else cv2.INTER_AREA)
    alpha = _alpha(mask, framing)
    canvas = cv2.blendLinear(person, background, alpha, 1 - alpha)
    return np.asarray(canvas, np.uint8), alpha
