"""The inside of an opened mouth, painted into the gap the jaw warp opens between the lips.

Where the warped lips are further apart than the photo's own, the gap holds stretched rows of the parting line; this
paints over them what a viewer expects there: a dark cavity lit like the face, the upper teeth hanging under the upper
lip, and the tongue low in the mouth (its tip raised toward the teeth with `tongue`). Every colour comes from the
photo: the cavity and tongue from its lips, the teeth from its own teeth when they show (else from the whites of the
eyes), all scaled by the face's brightness, so the inside is lit like the face around it. Edges are soft (sub-pixel
coverage at the lips, fading toward the corners), so it reads as a mouth, not a pasted shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from services.renderer import face_model as fm

Floats = npt.NDArray[np.float32]
Rgb = npt.NDArray[np.uint8]

_IVORY: Final = np.array([238.0, 230.0, 216.0], np.float32)
_EDGE_PX: Final = 1.6
# Where one upper tooth ends and the next begins, in mouth widths from the middle; and how dark the gap is.
_TOOTH_EDGES: Final = np.array([0.0, 0.16, 0.27, 0.35, 0.42], np.float32)
_GAP_DARK: Final = 0.25


@dataclass(frozen=True)
class InteriorColours:
    cavity: Floats  # RGB float, the deep shadow of the mouth
    tongue: Floats
    teeth: Floats
    own_teeth: bool  # the photo shows its upper teeth between parted lips: draw only a sliver more


def _polygon_pixels(rgb: Rgb, polygon: Floats, exclude: Floats | None = None) -> Floats:
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon - 0.5).astype(np.int32)], 1)
    if exclude is not None:
        cv2.fillPoly(mask, [np.round(exclude - 0.5).astype(np.int32)], 0)
    pixels: Floats = rgb[mask > 0].astype(np.float32)
    return pixels


def _luma(pixels: Floats) -> Floats:
    luma: Floats = pixels @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return luma


def interior_colours(rgb: Rgb, face: fm.FaceLandmarks) -> InteriorColours:
    """The mouth's inside colours for this photo (landmarks in the same pixels as `rgb`)."""
    outer, inner = face.group(fm.LIPS_OUTER), face.group(fm.LIPS_INNER)
    lips = _polygon_pixels(rgb, outer, exclude=inner)
    lip = np.median(lips, axis=0) if len(lips) else np.array([150, 90, 80], np.float32)
    # The cavity is the lips' colour deep in shadow; the tongue the lips' colour a little darker and redder.
    cavity = (lip * 0.24).astype(np.float32)
    tongue = (lip * np.array([0.8, 0.55, 0.55], np.float32)).astype(np.float32)
    gap = _polygon_pixels(rgb, inner)
    skin_luma = float(np.median(_luma(lips))) if len(lips) else 128.0
    own = False
    teeth = np.zeros(3, np.float32)
    if len(gap) >= 8:
        bright = gap[_luma(gap) >= np.percentile(_luma(gap), 75)]
        if float(np.median(_luma(bright))) > 1.15 * skin_luma:  # parted lips showing teeth, not shadow
            teeth, own = np.median(bright, axis=0).astype(np.float32), True
    if not own:
        whites = []
        for eye in (fm.RIGHT_EYE, fm.LEFT_EYE):
            ring = face.group(eye)
            pixels = _polygon_pixels(rgb, ring)
            if len(pixels):
                whites.append(pixels[_luma(pixels) >= np.percentile(_luma(pixels), 80)])
        found = np.concatenate(whites) if whites else np.zeros((0, 3), np.float32)
        sclera = np.median(found, axis=0) if len(found) else lip * 1.6
        if float(sclera.max() - sclera.min()) > 0.25 * max(float(sclera.max()), 1.0):
            # Not white (glasses, lashes, a drawing's eye): ivory in the face's light instead.
            sclera = _IVORY * float(np.clip(skin_luma / 150.0, 0.55, 1.0))
        # Teeth inside the mouth are in the lip's shade: a bit darker and warmer than the eyes' whites.
        teeth = np.clip(sclera * np.array([0.86, 0.83, 0.78], np.float32), 0, 255).astype(np.float32)
    return InteriorColours(cavity=cavity, tongue=tongue, teeth=teeth, own_teeth=own)


def _smooth(t: Floats) -> Floats:
    c = np.clip(t, 0.0, 1.0)
    out: Floats = (c * c * (3 - 2 * c)).astype(np.float32)
    return out


def paint(
    region: Rgb,
    top: Floats,
    bottom: Floats,
    across: Floats,
    mouth_width: float,
    tongue: float,
    colours: InteriorColours,
    offset: Floats | None = None,
) -> None:
    """Paint the inside into `region` (a view, rows x cols, changed in place) between `top` and `bottom`.

    `top`, `bottom`: per column, the output rows (in the region's row coordinates, pixel centres at integers) of the
    upper and lower edge of the new opening. `across`: per column, 1 at the middle of the mouth falling to 0 at its
    corners. `mouth_width` in pixels sets the teeth's size. `offset`: per column, where it came from on the photo's
    mouth, in pixels from its middle (signed), so the teeth are drawn apart where the mouth carries them.
    """
    height = bottom - top
    if not np.any(height > 0.25):
        return
    ys = np.arange(region.shape[0], dtype=np.float32)[:, None]
    # Coverage with sub-pixel edges; a gap narrower than 1.5 px fades in rather than popping.
    # The opening grows from the quarter-pixel band the rig keeps between the lips: that band alone paints nothing.
    grown = np.clip((height - 0.25) / 1.5, 0, 1)[None, :]
    # The lips' inner edges are soft in a photo: a ramp over _EDGE_PX rows, not a hard line.
    cover = np.clip((ys - top) / _EDGE_PX + 0.5, 0, 1) * np.clip((bottom - ys) / _EDGE_PX + 0.5, 0, 1) * grown
    rows = np.flatnonzero(cover.max(axis=1) > 0)
    if len(rows) == 0:
        return
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    ys, cover = ys[r0:r1], cover[r0:r1]
    depth = np.clip((ys - top) / np.maximum(height, 1e-3), 0, 1)  # 0 at the upper lip .. 1 at the lower lip
    # Light falls in from the front and below: darkest under the upper lip and toward the corners.
    light = (0.5 + 0.5 * across[None, :]) * (0.45 + 0.75 * depth)
    colour = colours.cavity[None, None, :] * light[..., None]

    # The tongue: a mound rising from the lower lip, its tip toward the upper teeth when raised.
    rise = (0.4 + 0.45 * tongue) * height
    mound = bottom - rise * np.clip(across, 0, 1) ** 0.6
    on_tongue = _smooth((ys - mound[None, :]) / np.maximum(0.25 * height[None, :], 0.75))
    tongue_light = (0.55 + 0.45 * _smooth((ys - mound[None, :]) / np.maximum(height[None, :], 1.0))) * light
    colour += on_tongue[..., None] * (colours.tongue[None, None, :] * tongue_light[..., None] - colour)

    # The upper teeth under the upper lip, the middle ones longest; a sliver only when the photo shows its own.
    length = (0.04 if colours.own_teeth else 0.1) * mouth_width * np.clip(across, 0, 1) ** 0.35
    length = np.minimum(length, 0.45 * height)
    tooth = _smooth((top[None, :] + length[None, :] - ys + 0.5) / 1.2) * _smooth(across[None, :] / 0.3)
    teeth_light = (0.6 + 0.4 * across[None, :]) * (1.0 - 0.25 * np.clip((ys - top) / np.maximum(length, 0.5), 0, 1))
    if offset is not None:
        # The gaps between the teeth: narrower teeth toward the corners, as seen from the front.
        reach = np.abs(offset)[None, :] / max(mouth_width, 1.0)
        gaps = np.min(np.abs(reach - _TOOTH_EDGES[:, None, None]), axis=0) * mouth_width
        teeth_light = teeth_light * (1.0 - _GAP_DARK * np.exp(-((gaps / 0.7) ** 2)))
    colour += tooth[..., None] * (colours.teeth[None, None, :] * teeth_light[..., None] - colour)

    band = region[r0:r1].astype(np.float32)
    band += cover[..., None] * (colour - band)
    region[r0:r1] = np.clip(band + 0.5, 0, 255).astype(np.uint8)
