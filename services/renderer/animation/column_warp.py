"""Per-column piecewise-linear inverse maps: the vertical half of the lip and lid warps.

A lip or a lid moves up and down within its column of pixels. Each column gets a few knots: source rows `S[k]` that
land on output rows `O[k]` (both non-decreasing in k); between knots a row moves linearly, outside them not at all.
The backward map (for every output row, the source row) is then exact, even when a gap opens from nothing, which a
linear combination of displacement fields cannot do.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]


def invert_columns(rows: Floats, outputs: Floats, sources: Floats) -> Floats:
    """For output rows `rows` (R) and per-column knots `outputs`, `sources` (K x C): the source row, R x C.

    One `np.interp` does every column: the columns are laid end to end, each shifted past the previous one's range.
    Rows outside a column's first and last knot keep that knot's offset (0 when the ends do not move).
    """
    knots, cols = outputs.shape
    # Equal knots (a gap shut to nothing) are nudged apart so the lookup stays strictly increasing.
    # The end knots stay exact: rows beyond them must not move at all.
    steps = np.minimum(np.arange(knots), knots - 1 - np.arange(knots)).astype(np.float64)
    nudged = outputs.astype(np.float64) + steps[:, None] * 1e-4
    low = min(float(nudged.min()), float(rows.min())) - 1.0
    span = max(float(nudged.max()), float(rows.max())) - low + 1.0
    shift = np.arange(cols, dtype=np.float64) * span
    first, last = nudged[0], nudged[-1]
    y = np.asarray(rows, np.float64)[:, None]
    inside = np.clip(y, first, last)
    queries = (inside - low + shift).T.ravel()
    values = np.interp(queries, (nudged - low + shift).T.ravel(), sources.astype(np.float64).T.ravel())
    mapped = values.reshape(cols, len(rows)).T + (y - inside)
    result: Floats = mapped.astype(np.float32)
    return result
