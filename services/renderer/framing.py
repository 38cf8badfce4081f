"""Where the avatar photo goes on the canvas, and how big: chosen from the face, like a camera operator would.

The photo is scaled uniformly, between "contain" (all of it inside the canvas) and "cover" (it fills the canvas),
as large as it can be while

* the face (the detector's box and the mesh's outline, forehead to chin) stays whole inside the canvas, no taller
  than `FACE_MAX` of it (a presenter, not a close-up of a face), with head room above it: at least `HEAD_ROOM`
  face heights to the canvas's top edge when the photo has that much above the face (a photo cropped at the
  hairline keeps its own, smaller head room);
* no edge of the photo where the person is cut off (`person_edges`: the body running off the photo's bottom, a
  shoulder off its side) shows inside the canvas: a body ending in mid-frame over background reads as a cut-out.
  Edges with background only may show: the backdrop (`services.renderer.backdrop`) continues the background beyond
  them without a seam.

Placement: the face's centre (between the eyes, so a head turned slightly still reads as centred) on the canvas's
vertical centre line, the eyes at `EYE_LINE` of the canvas height (a little above the upper third line leaves room
for the captions below), then moved as little as needed so that the photo covers the canvas along each axis it is
long enough for, and so that a cut edge sits on or beyond the canvas's edge.

When no scale keeps every cut edge out of sight (a narrow photo of a person cut at both sides, on a wide canvas),
the largest scale that keeps the face whole wins and the backdrop fades the person out at those edges. Without a
face: the photo contained and centred, as before faces were looked at.

Coordinates: a photo point u (pixel edges at integers, pixel centres at .5, as `face_model` gives them) lands on the
canvas at `u * scale + offset`, in the same convention. Offsets are whole pixels and the photo's scaled width a whole
number of pixels (`snap`), so placing it is a resize and a paste.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from services.renderer import face_model
from services.renderer.face_model import FaceLandmarks

Floats = npt.NDArray[np.float32]

HEAD_ROOM: Final = 0.35  # face heights between the face box's top and the canvas's top, at least
EYE_LINE: Final = 0.38  # where the eyes go, as a fraction of the canvas height from the top
_CHIN_ROOM: Final = 0.1  # face heights kept below the chin (the mesh's chin point), at least
_SIDE_ROOM: Final = 0.1  # face widths kept beside the face outline, at least
# The face box's height on the canvas, at most, in canvas heights: larger is a close-up of a face, not a presenter.
FACE_MAX: Final = 0.42
_SCALE_STEPS: Final = 96  # candidate scales from cover down to contain (geometric); 1 % apart at most
# An edge cuts the person when the mask is above 0.5 on more than this share of it (a few stray pixels do not count).
_CUT_SHARE: Final = 0.04
_EDGE_BAND: Final = 0.01  # the outermost share of the photo (rows or columns) that counts as its edge


@dataclass(frozen=True)
class Edges:
    """Which edges of the photo the person runs off."""

    left: bool = False
    top: bool = False
    right: bool = False
    bottom: bool = False


# When the person mask cannot be trusted: a portrait's body runs off the bottom, nothing else is known.
PORTRAIT: Final = Edges(bottom=True)


@dataclass(frozen=True)
class Framing:
    """The photo's uniform scale and the canvas position of its top-left corner (canvas pixels, may be < 0)."""

    scale: float
    offset: tuple[float, float]
    photo: tuple[int, int]  # the photo's width and height
    canvas: tuple[int, int]  # the canvas's width and height

    @property
    def size(self) -> tuple[int, int]:
        """The photo's size on the canvas in whole pixels (the height may be up to a pixel more than exact)."""
        return round(self.photo[0] * self.scale), max(1, math.ceil(self.photo[1] * self.scale - 1e-6))

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """The photo's rectangle on the canvas: x0, y0, x1, y1 (may reach beyond the canvas)."""
        ox, oy = self.offset
        width, height = self.size
        return ox, oy, ox + width, oy + height

    def visible_edges(self) -> Edges:
        """The photo's edges that lie inside the canvas (by more than half a pixel): where the canvas goes on."""
        x0, y0, x1, y1 = self.rect
        width, height = self.canvas
        return Edges(left=x0 > 0.5, top=y0 > 0.5, right=x1 < width - 0.5, bottom=y1 < height - 0.5)

    def to_canvas(self, points: Floats) -> Floats:
        mapped: Floats = (points * np.float32(self.scale) + np.array(self.offset, np.float32)).astype(np.float32)
        return mapped


def _snap_axis(offset: float, exact: float, length: int, span: int) -> float:
    """A whole-pixel offset near `offset` that still covers the canvas if the exact placement did."""
    snapped = float(round(offset))
    if offset <= 0.5 and offset + exact >= span - 0.5:  # covered: stay covered
        snapped = min(0.0, max(float(span - length), snapped))
    return snapped


def snap(framing: Framing) -> Framing:
    """The framing moved to whole pixels, its width a whole number of pixels: then placing the photo is a resize and
    a paste, several times faster than a sub-pixel warp, and the landmarks stay exact (to within a pixel in y)."""
    photo_w, photo_h = framing.photo
    scale = max(1, math.ceil(photo_w * framing.scale - 1e-6)) / photo_w
    moved = Framing(scale, framing.offset, framing.photo, framing.canvas)
    width, height = moved.size
    ox = _snap_axis(framing.offset[0], photo_w * framing.scale, width, framing.canvas[0])
    oy = _snap_axis(framing.offset[1], photo_h * framing.scale, height, framing.canvas[1])
    return Framing(scale, (ox, oy), framing.photo, framing.canvas)


def person_edges(mask: Floats) -> Edges:
    """Which edges of the photo the person (mask > 0.5) crosses over a noticeable share of the edge's length."""
    height, width = mask.shape
    rows, cols = max(1, round(_EDGE_BAND * height)), max(1, round(_EDGE_BAND * width))

    def cut(band: Floats) -> bool:
        return float((band > 0.5).mean()) > _CUT_SHARE

    return Edges(
        left=cut(mask[:, :cols]),
        top=cut(mask[:rows]),
        right=cut(mask[:, -cols:]),
        bottom=cut(mask[-rows:]),
    )


def contain(photo: tuple[int, int], canvas: tuple[int, int]) -> Framing:
    """The whole photo inside the canvas, centred (the framing without a face)."""
    scale = min(canvas[0] / photo[0], canvas[1] / photo[1])
    offset = ((canvas[0] - photo[0] * scale) / 2, (canvas[1] - photo[1] * scale) / 2)
    return snap(Framing(scale, offset, photo, canvas))


@dataclass(frozen=True)
class _Face:
    """What framing needs of a face, in photo pixels."""

    x0: float  # the face's extent: the detector's box and the mesh's outline together
    y0: float
    x1: float
    y1: float
    box_top: float  # the detector's box top and height: what head room is measured from and in
    box_h: float
    centre_x: float  # between the eyes
    eye_y: float

    @staticmethod
    def of(landmarks: FaceLandmarks) -> _Face:
        outline = landmarks.group(face_model.FACE_OVAL + face_model.CHIN + face_model.FOREHEAD)
        box = landmarks.box
        eyes = np.concatenate([landmarks.group(face_model.RIGHT_EYE), landmarks.group(face_model.LEFT_EYE)])
        right, left = landmarks.group(face_model.RIGHT_EYE).mean(0), landmarks.group(face_model.LEFT_EYE).mean(0)
        return _Face(
            x0=min(box.x0, float(outline[:, 0].min())),
            y0=min(box.y0, float(outline[:, 1].min())),
            x1=max(box.x1, float(outline[:, 0].max())),
            y1=max(box.y1, float(outline[:, 1].max())),
            box_top=box.y0,
            box_h=box.h,
            centre_x=float(right[0] + left[0]) / 2,
            eye_y=float(eyes[:, 1].mean()),
        )


def _axis_offset(ideal: float, length: float, span: float, cut_low: bool, cut_high: bool) -> float:
    """The offset along one axis nearest `ideal` such that a photo `length` long covers the canvas `span` when it
    can, and otherwise its cut ends (low: left/top, high: right/bottom) lie on or beyond the canvas's ends."""
    if length >= span:
        return min(0.0, max(span - length, ideal))
    if cut_low and not cut_high:
        return min(ideal, 0.0)
    if cut_high and not cut_low:
        return max(ideal, span - length)
    if cut_low and cut_high:
        return (span - length) / 2  # cannot hide both: keep them symmetric (the caller avoids this when it can)
    return ideal


def _place(face: _Face, scale: float, photo: tuple[int, int], canvas: tuple[int, int], cut: Edges) -> Framing:
    width, height = canvas
    ideal_x = width / 2 - face.centre_x * scale
    ideal_y = EYE_LINE * height - face.eye_y * scale
    # Head room first: the eye line may not push the face's top closer to the canvas's top than HEAD_ROOM.
    ideal_y = max(ideal_y, (HEAD_ROOM * face.box_h - face.box_top) * scale)
    ox = _axis_offset(ideal_x, photo[0] * scale, width, cut.left, cut.right)
    oy = _axis_offset(ideal_y, photo[1] * scale, height, cut.top, cut.bottom)
    return snap(Framing(scale, (ox, oy), photo, canvas))


def _face_fits(face: _Face, framing: Framing) -> bool:
    """The face whole inside the canvas with room beside and below it, and head room above it (as much as the
    photo has, up to HEAD_ROOM)."""
    s, (ox, oy) = framing.scale, framing.offset
    width, height = framing.canvas
    side = _SIDE_ROOM * (face.x1 - face.x0) * s
    head_room = min(HEAD_ROOM * face.box_h, max(0.0, face.box_top)) * s
    top = oy + face.box_top * s
    return (
        face.box_h * s <= FACE_MAX * height + 0.5
        and ox + face.x0 * s >= side - 0.5
        and ox + face.x1 * s <= width - side + 0.5
        and top >= head_room - 0.5
        and oy + face.y0 * s >= -0.5
        and oy + face.y1 * s <= height - _CHIN_ROOM * face.box_h * s + 0.5
    )


def _hides_cuts(cut: Edges, framing: Framing) -> bool:
    shown = framing.visible_edges()
    return not (
        (cut.left and shown.left)
        or (cut.top and shown.top)
        or (cut.right and shown.right)
        or (cut.bottom and shown.bottom)
    )


def frame_face(photo: tuple[int, int], canvas: tuple[int, int], landmarks: FaceLandmarks, cut: Edges) -> Framing:
    """The framing for a photo (width, height) with this face on a canvas (width, height); `cut`: the edges the
    person runs off (`person_edges`, or `PORTRAIT` when the mask is not to be trusted)."""
    face = _Face.of(landmarks)
    low = min(canvas[0] / photo[0], canvas[1] / photo[1])
    high = max(canvas[0] / photo[0], canvas[1] / photo[1])
    steps = max(2, min(_SCALE_STEPS, math.ceil(math.log(high / low) / math.log(1.01)) + 1))
    candidates = [_place(face, float(s), photo, canvas, cut) for s in np.geomspace(high, low, steps)]
    fitting = [f for f in candidates if _face_fits(face, f)]
    for framing in fitting:
        if _hides_cuts(cut, framing):
            return framing
    return fitting[0] if fitting else _place(face, low, photo, canvas, cut)


def frame(photo: tuple[int, int], canvas: tuple[int, int], landmarks: FaceLandmarks | None, cut: Edges) -> Framing:
    """`frame_face` when there is a face, else the contained, centred photo."""
    return contain(photo, canvas) if landmarks is None else frame_face(photo, canvas, landmarks, cut)
