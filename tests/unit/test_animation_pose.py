"""Pose and PoseTrack: what the renderer reads per frame."""

from __future__ import annotations

import numpy as np
import pytest

from services.renderer.animation.pose import FIELDS, NEUTRAL, Pose, PoseTrack


def test_a_track_gives_each_frames_pose() -> None:
    track = PoseTrack.build(3, jaw=[0.0, 0.5, 1.0], roll=[1.0, -1.0, 0.0])
    assert track.frames == 3
    assert track.at(1) == Pose(jaw=0.5, roll=-1.0)
    assert track.at(2).jaw == 1.0


def test_neutral_is_the_photo_on_every_frame() -> None:
    track = PoseTrack.neutral(4)
    assert all(track.at(n) == NEUTRAL for n in range(4))
    assert all(getattr(track, name).dtype == np.float32 for name in FIELDS)


def test_fields_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one value per frame"):
        PoseTrack.build(3, jaw=[0.0, 1.0])
    with pytest.raises(TypeError, match="not Pose fields"):
        PoseTrack.build(3, smile=[0.0, 0.0, 0.0])


def test_a_track_cannot_change_under_the_renderer() -> None:
    source = np.zeros(2, np.float32)
    track = PoseTrack.build(2, jaw=source)
    source[0] = 1.0
    assert track.jaw[0] == 0.0
    with pytest.raises(ValueError):
        track.jaw[0] = 1.0
