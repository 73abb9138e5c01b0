"""Skeleton overlays: joints and limbs drawn where and only where they should be; atomic saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyramidpose.data.images import read_image
from pyramidpose.skeletons import COCO
from pyramidpose.viz.draw import DrawStyle, auto_sizes, draw_poses, instance_color, save_image


def test_draw_respects_threshold_and_colours(tmp_path: Path) -> None:
    img = np.zeros((200, 200, 3), np.uint8)
    kp = np.zeros((1, 17, 2))
    kp[0, :, 0] = np.linspace(20, 180, 17)
    kp[0, :, 1] = 100
    sc = np.ones((1, 17))
    sc[0, 9] = 0.1  # left_wrist below threshold, placed away from everything else
    kp[0, 9] = (100, 180)
    out = draw_poses(img, kp, sc, "coco", threshold=0.3, radius=4, thickness=1)
    assert img.max() == 0  # input untouched
    ls, rs = COCO.index("left_shoulder"), COCO.index("right_shoulder")
    # dots: the person's colour (left side lighter), a dark outline around
    np.testing.assert_array_equal(out[100, int(kp[0, rs, 0])], instance_color(0))
    left = out[100, int(kp[0, ls, 0])].astype(int)
    assert (left >= np.array(instance_color(0))).all() and left.sum() > sum(instance_color(0))
    assert out[100 - 4, int(kp[0, rs, 0])].max() < 80  # the outline ring at the dot's edge
    assert out[150:200].max() == 0  # neither the wrist nor the elbow-wrist limb is drawn
    assert out[100, 20:180].any(axis=-1).mean() > 0.9  # the other limbs are
    out2 = draw_poses(img, kp, np.ones((1, 17)), "coco", bboxes=np.array([[10, 10, 50, 50]]), track_ids=[3])
    assert out2.sum() > out.sum()
    np.testing.assert_array_equal(out2[100, int(kp[0, rs, 0])], instance_color(3))  # colour per track id
    p = save_image(tmp_path / "sub" / "o.png", out2)
    np.testing.assert_array_equal(read_image(p), out2)
    assert [f.name for f in (tmp_path / "sub").iterdir()] == ["o.png"]


def _standing(cx: float, top: float, height: float) -> np.ndarray:
    """COCO keypoints of a rough standing person."""
    rel = {
        "nose": (0, 0.05), "left_eye": (0.03, 0.03), "right_eye": (-0.03, 0.03), "left_ear": (0.06, 0.05),
        "right_ear": (-0.06, 0.05), "left_shoulder": (0.12, 0.2), "right_shoulder": (-0.12, 0.2),
        "left_elbow": (0.16, 0.35), "right_elbow": (-0.16, 0.35), "left_wrist": (0.18, 0.5),
        "right_wrist": (-0.18, 0.5), "left_hip": (0.08, 0.52), "right_hip": (-0.08, 0.52),
        "left_knee": (0.08, 0.75), "right_knee": (-0.08, 0.75), "left_ankle": (0.08, 0.98), "right_ankle": (-0.08, 0.98),
    }  # fmt: skip
    return np.array([[cx + rel[n][0] * height, top + rel[n][1] * height] for n in COCO.keypoints])


def test_each_person_has_a_colour_and_low_scores_are_hidden() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    kp = np.stack([_standing(100, 20, 200), _standing(220, 20, 200)])
    ks = np.ones((2, 17))
    rs = COCO.index("right_shoulder")
    out = draw_poses(img, kp, ks, "coco", scores=np.array([0.9, 0.8]))
    a, b = (tuple(out[int(kp[i, rs, 1]), int(kp[i, rs, 0])]) for i in (0, 1))
    assert a == instance_color(0) and b == instance_color(1) and a != b
    low = draw_poses(img, kp, ks, "coco", scores=np.array([0.9, 0.08]))  # the 0.08 person is not drawn
    assert low[:, 170:].max() == 0 and low[:, :150].max() > 0
    shown = draw_poses(img, kp, ks, "coco", scores=np.array([0.9, 0.08]), style=DrawStyle(instance_threshold=0.0))
    assert shown[:, 170:].max() > 0
    box = np.array([[50, 15, 100, 210], [170, 15, 100, 210]], float)
    plain = draw_poses(img, kp, ks, "coco", bboxes=box, scores=np.array([0.9, 0.8]))
    labelled = draw_poses(img, kp, ks, "coco", bboxes=box, scores=np.array([0.9, 0.8]), style=DrawStyle(show_scores=True))
    assert (labelled != plain).any(axis=-1).sum() > 50  # the score labels


def test_sizes_follow_the_image_and_dots_are_larger_than_lines() -> None:
    for side in (320, 640, 1920, 3840):
        line, radius = auto_sizes(side * 9 // 16, side)
        assert 2 * radius >= 2 * line + 4, side
    assert auto_sizes(180, 320)[0] == 1 and auto_sizes(2160, 3840)[0] >= 6
    # at 4K a big person gets big dots; a small one (40 px) small dots
    img = np.zeros((2160, 3840, 3), np.uint8)
    big = draw_poses(img, _standing(1000, 200, 1600), np.ones(17), "coco")
    small = draw_poses(img, _standing(3000, 200, 40), np.ones(17), "coco")
    assert (big > 0).any(-1).sum() > 50 * (small > 0).any(-1).sum()
    assert (small[150:260, 2960:3040] > 0).any(-1).sum() > 30
    with pytest.raises(ValueError, match="instance_threshold"):
        DrawStyle(instance_threshold=2)


def test_nothing_drawn_below_threshold() -> None:
    img = np.full((50, 60, 3), 7, np.uint8)
    out = draw_poses(img, np.full((2, 17, 2), 25.0), np.zeros((2, 17)), "coco")
    np.testing.assert_array_equal(out, img)


def test_draw_with_no_people_returns_unchanged_copy():
    image = np.full((40, 30, 3), 7, np.uint8)
    for kps, scores in ((np.zeros((0, 17, 2)), np.zeros((0, 17))), (np.zeros((0,)), None)):
        out = draw_poses(image, kps, scores)
        assert out is not image and np.array_equal(out, image)
