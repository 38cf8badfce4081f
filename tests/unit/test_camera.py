"""The local renderer's camera: every clip starts and ends on the same framing, at rest; in between it moves,
differently from one clip to the next, and never shows anything beyond the canvas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from services.renderer.camera import MOVES, PushIn, move_for

FRAME = (1280, 720)
CANVAS = (1382, 778)  # the frame plus the renderer's 8 % margin, even


def _corners(push: PushIn, n: int) -> np.ndarray:
    m = push.matrix(n)
    w, h = FRAME
    frame_corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    return frame_corners @ m.T


@pytest.mark.parametrize("index", range(1, len(MOVES) + 2))
def test_each_clip_starts_and_ends_on_the_neutral_framing_at_rest(index: int) -> None:
    frames = 137
    push = PushIn(CANVAS, FRAME, frames, move_for(index))
    neutral = PushIn(CANVAS, FRAME, frames, move_for(1)).matrix(0)
    assert np.allclose(push.matrix(0), neutral) and np.allclose(push.matrix(frames - 1), neutral)
    # At rest at the joins: the first and last steps move a corner by well under a pixel.
    for a, b in ((0, 1), (frames - 2, frames - 1)):
        assert np.abs(_corners(push, a) - _corners(push, b)).max() < 0.05
    # In between it moves: mid-clip is zoomed in on the canvas.
    assert push.scale(frames // 2) < push.scale(0) - 0.03


@pytest.mark.parametrize("index", range(1, len(MOVES) + 1))
def test_the_camera_never_looks_past_the_canvas_and_moves_smoothly(index: int) -> None:
    frames = 101
    push = PushIn(CANVAS, FRAME, frames, move_for(index))
    steps = []
    for n in range(frames):
        corners = _corners(push, n)
        assert corners.min() >= -1e-6
        assert (corners[:, 0] <= CANVAS[0] - 1 + 1e-6).all() and (corners[:, 1] <= CANVAS[1] - 1 + 1e-6).all()
        if n:
            steps.append(np.abs(corners - _corners(push, n - 1)).max())
    assert max(steps) < 3.0  # no frame jumps


def test_consecutive_clips_are_framed_differently() -> None:
    frames = 101
    mids = [PushIn(CANVAS, FRAME, frames, move_for(i)).matrix(frames // 2) for i in range(1, len(MOVES) + 1)]
    for a, b in itertools.pairwise(mids):
        assert np.abs(a - b).max() > 5  # pixels of canvas offset, or a different zoom


def test_a_point_maps_back_to_where_the_frame_shows_it() -> None:
    push = PushIn(CANVAS, FRAME, 50, move_for(3))
    for n in (0, 13, 25, 49):
        m = push.matrix(n)
        x, y = push.to_frame(n, 700.0, 300.0)
        assert m @ np.array([x, y, 1.0]) == pytest.approx([700.0, 300.0])
