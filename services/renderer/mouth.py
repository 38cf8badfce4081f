"""Make the avatar's mouth open and close with its voice.

Two halves:

* `openness`: the speech's loudness at the video frame rate, mapped to how far the mouth is open (0 closed .. 1 wide
  open). RMS over a Hann window two frames long centred on each frame, relative to the line's own loud level (so a
  quiet and a loud voice move alike), with a noise gate so pauses and the silent tail are exactly closed, then
  lightly smoothed.
* `MouthRig`: opens the mouth on the composed picture by moving the jaw, not by pasting a shape. Everything below the
  line where the lips part (the lower lip, the chin) slides down by a smooth displacement field: full under the middle
  of the mouth, fading to nothing at the mouth corners, the cheeks and the neck. The field is applied as an inverse
  warp, so the picture stays continuous: no seams, no edges to hide. The rows at the parting line are stretched to
  fill the gap, and the gap is darkened to an inner-mouth colour in proportion to how much each pixel was stretched,
  which gives it soft, lip-shaped edges by construction.

The rig works in canvas pixels (the composed frame before the push-in) and produces a patch per openness level; the
renderer pastes the patch before zooming, so the mouth moves with the face.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from services.renderer.face import Mouth

Floats = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]

# Distinct openness levels the renderer uses. Level 0 is the untouched picture; more levels than this are not
# distinguishable at 25 fps and each costs a warp.
LEVELS: Final = 12

# Loudness mapping: the frame's RMS amplitude relative to the line's loud level (the 95th percentile over voiced
# frames), raised to a power below 1 so quieter syllables still move the lips; the loud level opens the mouth to
# _LOUD_OPEN, louder peaks up to 1.
_LOUD_PERCENTILE: Final = 95
_LOUD_OPEN: Final = 0.85
_CURVE: Final = 0.75
_GATE_DB: Final = -30.0  # below this relative to the loud level, or below _FLOOR_DBFS, the frame is silence
_FLOOR_DBFS: Final = -55.0

# Jaw geometry, as fractions of the mouth box (w, h) or the face box height (fh).
_DROP: Final = 0.4  # how far the lower lip drops when fully open, in mouth heights
_LIP_HALF_WIDTH: Final = 0.45  # half-width of the opening at the lips, in mouth widths (corners stay put)
_JAW_HALF_WIDTH: Final = 0.42  # half-width of the moving chin, in face widths
_JAW_HOLD: Final = 0.30  # the chin moves with the lower lip for this far below the lips, in fh
_JAW_FADE: Final = 0.45  # then the movement fades out over this much (the neck), in fh
_CREASE: Final = 0.06  # half-height of the stretched band at the parting line, in mouth heights
_INNER_TOP: Final = np.array([10.0, 4.0, 4.0], np.float32)  # the shadow under the upper lip
_INNER_BOTTOM: Final = np.array([78.0, 30.0, 26.0], np.float32)  # tongue and lower lip's inside
_INNER_OPACITY: Final = 0.95


def openness(samples: Floats, rate: int, frames: int, fps: int) -> Floats:
    """How open the mouth is on each of `frames` video frames, 0..1, from the speech `samples` at `rate`."""
    hop = rate / fps
    half = max(1, round(hop))  # the window spans two frames: one syllable's rise is seen, single frames are not
    window = np.hanning(2 * half + 1).astype(np.float32)
    padded = np.pad(samples.astype(np.float32), half)
    centres = np.round((np.arange(frames) + 0.5) * hop).astype(np.int64)
    level_db = np.full(frames, -120.0, np.float32)
    for i, centre in enumerate(centres):
        chunk = padded[centre : centre + 2 * half + 1]
        if len(chunk) == len(window):
            energy = float(np.sum((chunk * window) ** 2) / np.sum(window**2))
            level_db[i] = 10 * np.log10(energy + 1e-12)
    voiced = level_db[level_db > _FLOOR_DBFS]
    if len(voiced) == 0:
        return np.zeros(frames, np.float32)
    loud = float(np.percentile(voiced, _LOUD_PERCENTILE))
    relative = level_db - loud
    raw = np.clip(_LOUD_OPEN * np.power(10.0, relative / 20) ** _CURVE, 0.0, 1.0).astype(np.float32)
    raw[(relative < _GATE_DB) | (level_db < _FLOOR_DBFS)] = 0.0
    # Lips move no faster than about 10 Hz; a 3-tap smoothing removes frame-to-frame flicker and keeps syllables.
    smooth = np.convolve(np.pad(raw, 1), np.array([0.25, 0.5, 0.25], np.float32), mode="valid")
    return smooth.astype(np.float32)


def quantise(values: Floats) -> npt.NDArray[np.int32]:
    """Openness 0..1 to a level 0..LEVELS-1; only exact silence maps to level 0."""
    levels: npt.NDArray[np.int32] = np.clip(np.ceil(values * (LEVELS - 1) - 0.25), 0, LEVELS - 1).astype(np.int32)
    return levels


def _to_uint8(pixels: npt.NDArray[np.floating[Any]]) -> Image:
    rounded: Image = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)
    return rounded


def _smoothstep(t: npt.NDArray[np.floating[Any]]) -> Floats:
    c = np.clip(t, 0.0, 1.0).astype(np.float32)
    eased: Floats = c * c * (3 - 2 * c)
    return eased


def _interp_columns(
    x: npt.NDArray[np.floating[Any]], xp: npt.NDArray[np.floating[Any]], fp: npt.NDArray[np.floating[Any]]
) -> Floats:
    """`np.interp` down every column at once: column c of `x` looked up in column c of `xp` (ascending) -> `fp`.

    The columns are laid end to end, each shifted past the previous one's range, so one call does them all.
    """
    rows, cols = x.shape
    low = min(float(xp.min()), float(x.min()))
    shift = np.arange(cols, dtype=np.float64) * (max(float(xp.max()), float(x.max())) - low + 1.0)
    queries = np.clip(x, xp[0], xp[-1]) - low + shift
    values = np.interp(queries.T.ravel(), (xp - low + shift).T.ravel(), np.asarray(fp, np.float64).T.ravel())
    result: Floats = values.reshape(cols, rows).T.astype(np.float32)
    return result


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


class MouthRig:
    """Openable mouth on one composed picture: `patch(level)` is the picture's mouth region at that openness.

    `picture` is the composed RGB canvas; `mouth` was found on the avatar, which sits on the canvas scaled by `scale`
    with its top-left corner at `offset`. The patch rectangle has even coordinates and size, so it maps onto whole
    4:2:0 chroma samples.
    """

    def __init__(self, picture: Image, mouth: Mouth, scale: float, offset: tuple[float, float]) -> None:
        ox, oy = offset
        self.lip_y = oy + mouth.lip_y * scale - 0.5
        self.lip_lift = mouth.lip_lift * scale
        self.cx = ox + (mouth.box.x + mouth.box.w / 2) * scale - 0.5
        self.mouth_w = mouth.box.w * scale
        self.mouth_h = mouth.box.h * scale
        self.face_w = mouth.face.w * scale
        self.face_h = mouth.face.h * scale
        height, width = picture.shape[:2]
        x0 = max(0, int(self.cx - 0.55 * self.face_w) // 2 * 2)
        x1 = min(width, -(-int(self.cx + 0.55 * self.face_w + 2) // 2) * 2)
        y0 = max(0, int(self.lip_y - 0.25 * self.face_h) // 2 * 2)
        y1 = min(height, -(-int(self.lip_y + (_JAW_HOLD + _JAW_FADE + 0.05) * self.face_h + 2) // 2) * 2)
        self.rect = Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))
        self._source = picture[y0:y1, x0:x1].astype(np.float32)

    @property
    def drop_px(self) -> float:
        """How far the lower lip moves when the mouth is fully open, in canvas pixels."""
        return _DROP * self.mouth_h

    def patch(self, level: int) -> Image:
        """The mouth region (RGB, `self.rect`) at openness level/(LEVELS-1)."""
        return self.open(level / (LEVELS - 1))

    def open(self, amount: float) -> Image:
        """The mouth region (RGB, `self.rect`) with the mouth open by `amount` (0..1)."""
        if amount <= 0 or self.rect.w == 0 or self.rect.h == 0:
            return _to_uint8(self._source)
        rows, cols = self._source.shape[:2]
        lip = self.lip_y - self.rect.y
        cx = self.cx - self.rect.x
        crease = max(0.75, _CREASE * self.mouth_h)
        hold, fade = _JAW_HOLD * self.face_h, _JAW_FADE * self.face_h

        # Forward displacement of every source row, per column: how far it moves down.
        step = 0.25
        ys = np.arange(-2.0, rows + 2.0, step, dtype=np.float32)[:, None]
        xs = np.arange(cols, dtype=np.float32)[None, :]
        # The parting line: a parabola, `lip_lift` higher at the corners of the mouth box than in the middle.
        parting = lip - self.lip_lift * ((xs - cx) / (self.mouth_w / 2)) ** 2
        rise = _smoothstep((ys - (parting - crease)) / (2 * crease))
        fall = 1 - _smoothstep((ys - (lip + hold)) / fade)
        vertical = rise * fall
        # The moving part widens from the lips (corners fixed) to the chin (whole jaw).
        jaw = _smoothstep((ys - lip) / hold)
        half_width = (1 - jaw) * _LIP_HALF_WIDTH * self.mouth_w + jaw * _JAW_HALF_WIDTH * self.face_w
        # Lens-shaped at the lips (a cosine: the corners are sharp), smooth at the chin (cosine squared).
        across = np.maximum(np.cos(np.clip(np.abs(xs - cx) / half_width, 0.0, 1.0) * (np.pi / 2)), 0.0) ** (1 + jaw)
        moved = ys + amount * self.drop_px * vertical * across
        moved = np.maximum.accumulate(moved, axis=0)  # monotonic already (the fade is long); made sure for interp

        # Invert per column: for each output row, the source row that lands there.
        out_rows = np.arange(rows, dtype=np.float32)
        map_y = _interp_columns(
            np.broadcast_to(out_rows[:, None], (rows, cols)), moved, np.broadcast_to(ys, moved.shape)
        )
        map_x = np.broadcast_to(xs, (rows, cols)).astype(np.float32)
        warped = cv2.remap(self._source, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)

        # Inner mouth: each output pixel is new (gap) in proportion to how much its source was stretched.
        stretch = np.gradient(moved, step, axis=0)
        # `ys` is a uniform grid: look the stretch up by index.
        at = np.clip((map_y - ys[0, 0]) / step, 0, len(ys) - 1.001)
        below = at.astype(np.int32)
        frac = at - below
        columns = np.arange(cols)[None, :]
        stretch_at = stretch[below, columns] * (1 - frac) + stretch[below + 1, columns] * frac
        # Only the band at the parting line opens; the stretch lower down (the jaw widening) is skin.
        band = 1 - _smoothstep((np.abs(map_y - parting) - crease) / crease)
        gap = np.sqrt(np.clip(1 - 1 / np.maximum(stretch_at, 1.0), 0.0, 1.0)) * band
        # Depth into the gap, 0 under the upper lip to 1 at the lower lip: dark at the top, the tongue below.
        opening = (
            amount
            * self.drop_px
            * np.cos(np.clip(np.abs(xs - cx) / (_LIP_HALF_WIDTH * self.mouth_w), 0, 1) * (np.pi / 2))
        )
        depth = (np.clip((out_rows[:, None] - parting) / np.maximum(opening, 1.0), 0.0, 1.0) ** 2)[..., None]
        inner = _INNER_TOP * (1 - depth) + _INNER_BOTTOM * depth
        alpha = (_INNER_OPACITY * gap)[..., None]
        # The inside of a mouth is lit from the front: keep a little of the stretched lip colour for texture.
        result = warped * (1 - alpha) + inner * alpha
        return _to_uint8(result)
