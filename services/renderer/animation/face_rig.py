"""The avatar's face as a puppet: `FaceRig(canvas, landmarks, mask).draw(pose)` is the picture with that pose.

The photo itself is warped (one backward map, one `cv2.remap` per frame), so its own lips, teeth, lids and hair move;
nothing is pasted except the inside of a mouth opened wider than the photo's (`mouth_interior`).

Three kinds of motion, each built per avatar from the face mesh and combined per frame:

* The head (roll, pitch, yaw): rotation about a pivot at the neck. Roll turns the picture; pitch and yaw shift each
  point in proportion to how far in front of the head's centre it is (the mesh's depth), so the nose moves more than
  the cheeks and the outline least: the parallax of a turn. A weight, 1 over the head and hair, fades the motion out
  across the neck and shoulders and into the background. These are linear in the pose: basis fields on a coarse
  grid, summed and upsampled per frame.
* The mouth (jaw, wide, round, press): horizontal motion of the corners is a linear field around the mouth; vertical
  motion is exact per column (`column_warp`): the upper lip lifts a little, the photo's parted lips split under its
  upper teeth, the lower lip and chin drop (corners fixed, the whole jaw at the chin, fading across the neck), press
  shuts the photo's own gap. The new opening is handed to `mouth_interior.paint`.
* The lids (blink_left, blink_right): the skin above each eye stretches down over it to the lower lid, ending in a
  dark lash line; the eye under it does not move (the gaze stays on the camera).

Local motion rides on the head: the mouth's and eyes' maps are evaluated in the head-moved frame (shifted by the head
motion at their centres), so they stay on the face while it turns.

Coordinates: canvas pixels, pixel centres at integers inside (the mesh's points are at .5 centres and are shifted).
A face smaller than about 40 px across is too small to rig; the caller renders such a picture (or one without a face:
`detect_face` gives None and no rig is made) with camera motion only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from services.renderer import face_model as fm
from services.renderer.animation import mouth_interior
from services.renderer.animation.column_warp import invert_columns
from services.renderer.animation.pose import NEUTRAL, Pose

Floats = npt.NDArray[np.float32]
Rgb = npt.NDArray[np.uint8]

_MAX_TURN: Final = 5.0  # degrees: the largest head turn drawn (the performance stays within 3-4)
_GRID: Final = 4  # the head's fields are smooth: computed every 4 px and upsampled

# The head, in face widths (fw, cheek to cheek) and face heights (fh, forehead to chin).
_HEAD_UP: Final = 0.12  # the head's centre sits this far above the face's middle (hair), in fh
_HEAD_AXES: Final = (0.78, 0.68)  # head ellipse semi-axes, in fw and fh: full motion inside
_HEAD_FADE: Final = 0.75  # the motion fades to nothing this far outside it, in ellipse radii
_PIVOT_BELOW_CHIN: Final = 0.35  # the neck's pivot, in fh below the chin
_AXIS_BEHIND: Final = 0.25  # the head's turning axis, in fw behind the face outline's depth

# The mouth, in mouth widths (mw, corner to corner) unless said.
_DROP: Final = 0.36  # how far the lower lip drops at jaw 1
_LIFT: Final = 0.12  # the upper lip rises this share of the drop
_CHIN: Final = 0.9  # the chin drops this share of the lower lip's drop
_JAW_HALF: Final = 0.42  # the chin's moving part, half-width in fw
_NECK_FADE: Final = 0.45  # below the jaw line the drop fades out over this, in fh
_UPPER_TEETH: Final = 0.6  # the photo's parted lips split this far down their gap (under the upper teeth)
_JAW_NARROW: Final = 0.1  # corners move in this share of the width at jaw 1
_TUCK: Final = 0.03  # pressed lips hide this much of their inner edges
_WIDE: Final = 0.3  # corners move outward this share of the width at wide 1
_ROUND: Final = 0.35  # and inward at round 1
_MAX_NARROW: Final = 0.4  # the most the mouth narrows, as a share of its width (the mesh reads about a third of it)
_BUMP_AXES: Final = (0.5, 1.4)  # the horizontal field's full region: half-sizes in mw and outer-lip heights
_BUMP_FADE: Final = 0.35  # fading sideways over at most this beyond the corners, in mw: the cheeks barely follow
_BUMP_FADE_Y: Final = 0.35  # and up and down over this, in mw
_OUTLINE_REACH: Final = 0.85  # but gone by this share of the way from the mouth's middle to the face's outline

# The lids, in eye widths (corner to corner).
_LID_SKIN: Final = 0.42  # how much skin above the upper lid stretches down over the eye
_LASH: Final = 0.05  # the lash line's half-thickness
_LASH_DARK: Final = 0.6

_UPPER_INNER: Final = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_LOWER_INNER: Final = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
_JAW_LINE: Final = (58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288)


def _smooth(t: Floats) -> Floats:
    c = np.clip(t, 0.0, 1.0)
    out: Floats = (c * c * (3 - 2 * c)).astype(np.float32)
    return out


def _curve(points: Floats) -> tuple[Floats, Floats]:
    """A landmark curve as x ascending -> y, for `np.interp`."""
    order = np.argsort(points[:, 0], kind="stable")
    return points[order, 0].astype(np.float32), points[order, 1].astype(np.float32)


def _even_span(low: float, high: float, limit: int) -> tuple[int, int]:
    start = max(0, math.floor(low) // 2 * 2)
    end = min(limit, -(-math.ceil(high) // 2) * 2)
    return start, max(start, end)


def _depth_field(points: Floats, depth: Floats, xs: Floats, ys: Floats, sigma: float, outside: float) -> Floats:
    """The mesh's depth spread smoothly over the grid (normalised Gaussian splatting); `outside` away from the face."""
    h, w = len(ys), len(xs)
    step = float(xs[1] - xs[0]) if w > 1 else 1.0
    total = np.zeros((h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    col = np.clip(np.round((points[:, 0] - xs[0]) / step).astype(int), 0, w - 1)
    row = np.clip(np.round((points[:, 1] - ys[0]) / step).astype(int), 0, h - 1)
    np.add.at(total, (row, col), depth)
    np.add.at(weight, (row, col), 1.0)
    size = sigma / step
    total = np.asarray(cv2.GaussianBlur(total, (0, 0), size), np.float32)
    weight = np.asarray(cv2.GaussianBlur(weight, (0, 0), size), np.float32)
    density = weight / max(float(weight.max()), 1e-6)
    inside = np.clip(density / 0.15, 0, 1)
    field: Floats = (inside * total / np.maximum(weight, 1e-9) + (1 - inside) * outside).astype(np.float32)
    return field


@dataclass(frozen=True)
class Rect:
    """A region of the canvas; even x, y, w, h, so it maps onto whole 4:2:0 chroma samples."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class _Eye:
    cols: tuple[int, int]  # canvas columns of its region
    rows: tuple[int, int]
    top: Floats  # per column of the region: the upper lid's row, the lower lid's, 0..1 across the eye
    bottom: Floats
    across: Floats
    skin: float  # px of skin above the lid that stretches down
    lash: Floats  # RGB of the lash line
    width: float


class FaceRig:
    """The region of `canvas` that any pose can change (`rect`) and its picture at a pose (`draw`)."""

    def __init__(self, canvas: Rgb, landmarks: fm.FaceLandmarks, mask: Floats | None = None) -> None:
        # `mask` (the person's probability) is accepted for callers that have it; the fade of the head's motion into
        # the background is smooth enough without it (the backdrop is blurred).
        del mask
        self._canvas = np.ascontiguousarray(canvas)
        height, width = canvas.shape[:2]
        pts = landmarks.points.astype(np.float32) - 0.5
        self._pts = pts
        fw = float(np.linalg.norm(pts[454] - pts[234]))
        fh = float(np.linalg.norm(pts[152] - pts[10]))
        self._fw, self._fh = fw, fh

        # --- the head: weight, pivot, depth
        centre = (pts[10] + pts[152]) / 2 - np.array([0.0, _HEAD_UP * fh], np.float32)
        axes = np.array([_HEAD_AXES[0] * fw, _HEAD_AXES[1] * fh], np.float32)
        reach = axes * (1 + _HEAD_FADE)
        self._head_centre, self._head_axes = centre, axes
        self._pivot = np.array([pts[152][0], pts[152][1] + _PIVOT_BELOW_CHIN * fh], np.float32)
        oval_depth = float(np.max(landmarks.depth[list(fm.FACE_OVAL)]))
        self._axis_depth = oval_depth + _AXIS_BEHIND * fw
        self._depth_pts = (pts[:468], landmarks.depth[:468].astype(np.float32))

        # --- the mouth and the lids (the subject's left eye is on the image's right): their regions, wide enough
        # that they hold their motion wherever the head carries them
        self._carry = math.radians(_MAX_TURN) * (1.4 * fh + 1.2 * fw)
        self._mouth_setup(pts, fw, fh, width, height)
        self._colours = mouth_interior.interior_colours(self._canvas, landmarks)
        self._eyes = {
            "left": self._eye_setup(pts, fm.LEFT_EYE_UPPER, fm.LEFT_EYE_LOWER),
            "right": self._eye_setup(pts, fm.RIGHT_EYE_UPPER, fm.RIGHT_EYE_LOWER),
        }

        # --- the rect: the head's reach, and the jaw's below it
        x0, x1 = _even_span(centre[0] - reach[0] - 2, centre[0] + reach[0] + 2, width)
        y0, y1 = _even_span(centre[1] - reach[1] - 2, centre[1] + reach[1] + 2, height)
        x0, x1 = min(x0, self._mouth_cols[0]), max(x1, self._mouth_cols[1])
        y0, y1 = min(y0, self._mouth_rows[0]), max(y1, self._mouth_rows[1])
        self.rect = Rect(x0, y0, x1 - x0, y1 - y0)
        self._coarse = (max(2, -(-self.rect.w // _GRID)), max(2, -(-self.rect.h // _GRID)))
        cw, ch = self._coarse
        xs = (self.rect.x + (np.arange(cw, dtype=np.float32) + 0.5) * (self.rect.w / cw) - 0.5).astype(np.float32)
        ys = (self.rect.y + (np.arange(ch, dtype=np.float32) + 0.5) * (self.rect.h / ch) - 0.5).astype(np.float32)
        self._grid = (xs, ys)
        self._head_basis = self._head_fields(xs, ys)  # 3 x ch x cw x 2
        gx, gy = np.meshgrid(
            np.arange(self.rect.x, self.rect.x + self.rect.w, dtype=np.float32),
            np.arange(self.rect.y, self.rect.y + self.rect.h, dtype=np.float32),
        )
        self._identity = np.stack([gx, gy], axis=-1)
        self._mouth_head = self._head_at(self._mcx, self._mcy)
        self._eye_heads = {
            "left": self._head_at(*pts[list(fm.LEFT_EYE)].mean(axis=0)),
            "right": self._head_at(*pts[list(fm.RIGHT_EYE)].mean(axis=0)),
        }

    # ---- set-up ------------------------------------------------------------------------------------------------

    def _head_weight(self, x: Floats, y: Floats) -> Floats:
        c, a = self._head_centre, self._head_axes
        r = np.sqrt(((x - c[0]) / a[0]) ** 2 + ((y - c[1]) / a[1]) ** 2)
        return 1 - _smooth((r - 1) / _HEAD_FADE)

    def _head_fields(self, xs: Floats, ys: Floats) -> Floats:
        """Forward displacement per degree of roll, pitch, yaw on the grid `xs` x `ys`: 3 x len(ys) x len(xs) x 2."""
        x, y = np.meshgrid(xs, ys)
        weight = self._head_weight(x, y)
        rad = math.pi / 180
        px, py = self._pivot
        roll = np.stack([-(y - py), x - px], axis=-1) * (rad * weight)[..., None]
        points, depth = self._depth_pts
        edge = self._axis_depth - _AXIS_BEHIND * self._fw
        z = _depth_field(points, depth, xs, ys, sigma=0.08 * self._fw, outside=edge)
        lever = (self._axis_depth - z) * rad * weight
        zero = np.zeros_like(lever)
        pitch = np.stack([zero, lever], axis=-1)
        yaw = np.stack([lever, zero], axis=-1)
        return np.stack([roll, pitch, yaw]).astype(np.float32)

    def _head_at(self, x: float, y: float) -> Floats:
        """The head's displacement per degree (roll, pitch, yaw) at one canvas point, as `draw` upsamples it: 3 x 2."""
        xs, ys = self._grid
        fx = float(np.clip(np.interp(x, xs, np.arange(len(xs))), 0, len(xs) - 1.001))
        fy = float(np.clip(np.interp(y, ys, np.arange(len(ys))), 0, len(ys) - 1.001))
        i, j = int(fy), int(fx)
        a, b = fy - i, fx - j
        f = self._head_basis
        upper = (1 - b) * f[:, i, j] + b * f[:, i, j + 1]
        lower = (1 - b) * f[:, i + 1, j] + b * f[:, i + 1, j + 1]
        near = (1 - a) * upper + a * lower
        return near.astype(np.float32)

    def _mouth_setup(self, pts: Floats, fw: float, fh: float, width: int, height: int) -> None:
        left, right = pts[61], pts[291]
        mw = float(np.linalg.norm(right - left))
        self._mw = mw
        self._mcx = float((left[0] + right[0]) / 2)
        lip_h = float(pts[17][1] - pts[0][1])
        self._mcy = float((pts[0][1] + pts[17][1]) / 2)
        self._upper = _curve(pts[list(_UPPER_INNER)])
        self._lower = _curve(pts[list(_LOWER_INNER)])
        self._jawline = _curve(pts[list(_JAW_LINE)])
        self._philtrum = 0.25 * mw  # above the upper lip's inner edge, the skin that stretches when it lifts
        ax, ay = _BUMP_AXES[0] * mw, _BUMP_AXES[1] * lip_h / 2
        # The cheeks' motion dies out before the face's outline (a narrow jaw is near the corners): moving the
        # outline would pull the background into the face. Up and down it fades slowly: a sideways shift that
        # stopped within a few rows would shear the skin into a visible edge.
        outline = _outline_distance(pts, self._mcx, self._mcy, fh)
        fade_x = float(np.clip(_OUTLINE_REACH * outline - ax, 0.3 * mw, _BUMP_FADE * mw))
        fade_y = _BUMP_FADE_Y * mw
        half = max((_JAW_HALF + 0.03) * fw, ax + fade_x) + 2  # the chin's reach, or the cheeks'
        bump_top = self._mcy - ay - fade_y
        top = min(float(np.min(self._upper[1])) - self._philtrum, bump_top) - 2
        bottom = float(np.max(self._jawline[1])) + (_NECK_FADE + 0.05) * fh + _DROP * mw
        pad = self._carry
        c0, c1 = _even_span(self._mcx - half - pad, self._mcx + half + pad, width)
        r0, r1 = _even_span(top - pad, bottom + pad, height)
        self._mouth_cols, self._mouth_rows = (c0, c1), (r0, r1)
        mx, my = np.meshgrid(np.arange(c0, c1, dtype=np.float32), np.arange(r0, r1, dtype=np.float32))
        across = 1 - _smooth(((np.abs(mx - self._mcx) - ax) / fade_x).astype(np.float32))
        updown = 1 - _smooth(((np.abs(my - self._mcy) - ay) / fade_y).astype(np.float32))
        self._bump = (across * updown).astype(np.float32)

    def _eye_setup(self, pts: Floats, upper: tuple[int, ...], lower: tuple[int, ...]) -> _Eye:
        ux, uy = _curve(pts[list(upper)])
        lx, ly = _curve(pts[list(lower)])
        ew = float(ux[-1] - ux[0])
        skin = _LID_SKIN * ew
        pad = self._carry
        c0, c1 = _even_span(ux[0] - 2 - pad, ux[-1] + 3 + pad, self._canvas.shape[1])
        cols = np.arange(c0, c1, dtype=np.float32)
        top = np.interp(cols, ux, uy).astype(np.float32)
        bottom = np.maximum(np.interp(cols, lx, ly), top).astype(np.float32)
        mid = (ux[0] + ux[-1]) / 2
        across = np.clip(1 - np.abs(cols - mid) / (ew / 2), 0, 1).astype(np.float32)
        lash_half = _LASH * ew + 0.5
        r0, r1 = _even_span(
            float(top.min()) - skin - 2 - pad, float(bottom.max()) + 3 * lash_half + 2 + pad, self._canvas.shape[0]
        )
        e0, e1 = int(np.floor(uy.min() - 2)), int(np.ceil(ly.max() + 2))
        region = self._canvas[max(0, e0) : e1, max(0, int(ux[0])) : int(ux[-1]) + 1].reshape(-1, 3).astype(np.float32)
        luma = region @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        lash = np.median(region[luma <= np.percentile(luma, 8)], axis=0).astype(np.float32)
        return _Eye((c0, c1), (r0, r1), top, bottom, across, skin, lash, ew)

    # ---- per frame ---------------------------------------------------------------------------------------------

    def draw(self, pose: Pose) -> Rgb:
        """The RGB patch of `rect` with the face in `pose`; `draw(NEUTRAL)` is the canvas region unchanged."""
        r = self.rect
        if pose == NEUTRAL:
            return self._canvas[r.y : r.y + r.h, r.x : r.x + r.w].copy()
        # Beyond _MAX_TURN the mouth's and lids' regions could not hold their motion: turns are clipped there.
        turn = np.clip(np.array([pose.roll, pose.pitch, pose.yaw], np.float32), -_MAX_TURN, _MAX_TURN)
        if np.any(turn != 0):
            coarse = np.tensordot(turn, self._head_basis, axes=1)
            moved = cv2.resize(coarse, (r.w, r.h), interpolation=cv2.INTER_LINEAR)
            maps = self._identity - moved
        else:
            maps = self._identity.copy()

        band = self._mouth_map(pose, turn, maps)
        lids = []
        for side, amount in (("left", pose.blink_left), ("right", pose.blink_right)):
            if amount > 0:
                shift = turn @ self._eye_heads[side]
                lids.append(self._lid_map(self._eyes[side], float(min(amount, 1.0)), shift, maps))

        patch: Rgb = np.asarray(
            cv2.remap(self._canvas, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            np.uint8,
        )
        if band is not None:
            c0, rows, top, bottom, across, offset = band
            region = patch[rows[0] - r.y : rows[1] - r.y, c0 - r.x : c0 - r.x + len(top)]
            mouth_interior.paint(
                region, top - (rows[0]), bottom - (rows[0]), across, self._mw, pose.tongue, self._colours, offset
            )
        for c0, rows, edge, across, eye, amount in lids:
            self._lash(patch, c0, rows, edge, across, eye, amount)
        return patch

    def _mouth_map(
        self, pose: Pose, turn: Floats, maps: Floats
    ) -> tuple[int, tuple[int, int], Floats, Floats, Floats, Floats] | None:
        """Add the mouth's motion to `maps` (in place); the new opening per column, if any."""
        press = float(np.clip(pose.press, 0, 1))
        jaw = float(np.clip(pose.jaw, 0, 1)) * (1 - press)
        spread = _WIDE * float(np.clip(pose.wide, -1, 1)) - _ROUND * float(np.clip(pose.round, 0, 1))
        spread -= _JAW_NARROW * jaw  # a dropping jaw pulls the corners in a little: the opening turns oval
        # "oo" asks for both round and narrow: the lips narrow once, not twice.
        spread = max(spread, -_MAX_NARROW)
        if jaw == 0 and press == 0 and spread == 0:
            return None
        r = self.rect
        c0, c1 = self._mouth_cols
        r0, r1 = self._mouth_rows
        shift = turn @ self._mouth_head  # the head's motion at the mouth: the mouth's frame rides on it
        cols = np.arange(c0, c1, dtype=np.float32) - shift[0]
        rows = np.arange(r0, r1, dtype=np.float32) - shift[1]
        mw = self._mw
        # Horizontal: corners out (wide) or in (round), the cheeks beside them following.
        # The lips stretch between the corners; beyond them the cheeks are carried along, fading (not growing with
        # the distance, which would pull the face's outline).
        reach = np.clip(cols - self._mcx, -mw / 2, mw / 2)
        dx = spread * reach[None, :] * self._bump
        # The source column under each output column on the lips' row, to look the lip curves up where they came from.
        lip_row = int(np.clip(round(self._mcy - r0), 0, r1 - r0 - 1))
        src = cols - dx[lip_row]
        upper = np.interp(src, *self._upper).astype(np.float32)
        lower = np.maximum(np.interp(src, *self._lower), upper).astype(np.float32)
        jawline = np.interp(src, *self._jawline).astype(np.float32)
        half = mw / 2 * (1 - 0.3 * float(np.clip(pose.round, 0, 1)))
        off = np.abs(src - self._mcx)
        # The opening's outline across: an ellipse's (round, "ah"), flatter and more slit-like when spread.
        shape = 0.55 + 0.5 * max(pose.wide, 0.0) - 0.2 * float(np.clip(pose.round, 0, 1))
        lens = np.clip(1 - (off / max(half, 1.0)) ** 2, 0, 1) ** shape
        chin = np.maximum(np.cos(np.clip(off / (_JAW_HALF * self._fw), 0, 1) * (math.pi / 2)), 0) ** 2
        drop = jaw * _DROP * mw
        gap = lower - upper
        s0 = upper - self._philtrum
        s1 = upper
        s2 = s1 + _UPPER_TEETH * gap
        s3 = s2 + 0.25
        s4 = np.maximum(lower, s3 + 0.01)
        s5 = np.maximum(jawline, s4 + 0.15 * self._fh)
        s6 = s5 + _NECK_FADE * self._fh + drop
        opening = (drop * lens).astype(np.float32)
        lift = _LIFT * opening
        o1 = s1 - lift + press * (s2 - s1)
        o2 = s2 - lift
        o3 = o2 + (1 - press) * (s3 - s2) + opening + lift
        o4 = s4 + opening - press * (s4 - s3)
        o5 = s5 + _CHIN * drop * chin
        # Pressed lips roll in a little: the rows at their inner edges (often teeth under the mesh's lip line) hide.
        tuck = press * _TUCK * mw * np.sqrt(np.clip(1 - (off / (mw / 2)) ** 2, 0, 1))
        sources = np.stack([s0, s1 - tuck, s2, s3, s4 + tuck, s5, s6])
        outputs = np.stack([s0, o1, o2, o3, o4, np.maximum(o5, o4 + 0.01), s6])
        source_rows = invert_columns(rows, outputs, sources)
        view = maps[r0 - r.y : r1 - r.y, c0 - r.x : c1 - r.x]
        view[..., 0] -= dx
        view[..., 1] += source_rows - rows[:, None]
        if drop <= 0:
            return None
        return c0, (r0, r1), o2 + shift[1], o3 + shift[1], lens.astype(np.float32), (src - self._mcx).astype(np.float32)

    def _lid_map(
        self, eye: _Eye, amount: float, shift: Floats, maps: Floats
    ) -> tuple[int, tuple[int, int], Floats, Floats, _Eye, float]:
        """Stretch the skin above the eye down over it (in place in `maps`); the lid's edge per column."""
        r = self.rect
        c0, c1 = eye.cols
        r0, r1 = eye.rows
        rows = np.arange(r0, r1, dtype=np.float32)[:, None] - shift[1]
        cols = np.arange(c0, c1, dtype=np.float32) - shift[0]
        base = np.arange(c0, c1, dtype=np.float32)
        top = np.interp(cols, base, eye.top).astype(np.float32)
        bottom = np.interp(cols, base, eye.bottom).astype(np.float32)
        across = np.interp(cols, base, eye.across).astype(np.float32)
        edge = top + amount * (bottom - top)
        start = top - eye.skin
        covered = (rows >= start) & (rows < edge)
        stretched = start + (rows - start) * (eye.skin / np.maximum(edge - start, 1e-3))
        view = maps[r0 - r.y : r1 - r.y, c0 - r.x : c1 - r.x, 1]
        view += np.where(covered, stretched - rows, 0.0)
        return c0, (r0, r1), edge + shift[1], across, eye, amount

    def _lash(
        self, patch: Rgb, c0: int, rows: tuple[int, int], edge: Floats, across: Floats, eye: _Eye, amount: float
    ) -> None:
        """Darken a lash line along the lid's edge: thicker and darker as the lid shuts."""
        r = self.rect
        r0, r1 = rows
        region = patch[r0 - r.y : r1 - r.y, c0 - r.x : c0 - r.x + len(edge)]
        ys = np.arange(r0, r1, dtype=np.float32)[:, None]
        half = _LASH * eye.width + 0.5
        strength = _LASH_DARK * min(1.0, 1.5 * amount) * np.sqrt(across)[None, :]
        profile = np.exp(-(((ys - edge[None, :] + 0.3 * half) / half) ** 2)) * strength
        pixels = region.astype(np.float32)
        pixels += profile[..., None] * (eye.lash[None, None, :] - pixels)
        region[...] = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def _outline_distance(pts: Floats, cx: float, cy: float, fh: float) -> float:
    """How far the face's outline is from (cx, cy) sideways, at about that height (the nearer side)."""
    oval = pts[list(fm.FACE_OVAL)]
    near = oval[np.abs(oval[:, 1] - cy) <= 0.15 * fh]
    if len(near) == 0:
        near = oval
    return float(np.min(np.abs(near[:, 0] - cx)))
