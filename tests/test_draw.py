"""Skeleton overlays: joints and limbs drawn where and only where they should be; atomic saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyramidpose.data.images import read_image
from pyramidpose.skeletons import COCO
from pyramidpose.viz.draw import draw_poses, save_image


def test_draw_respects_threshold_and_colours(tmp_path: Path) -> None:
    img = np.zeros((200, 200, 3), np.uint8)
    kp = np.zeros((1, 17, 2))
    kp[0, :, 0] = np.linspace(20, 180, 17)
    kp[0, :, 1] = 100
    sc = np.ones((1, 17))
    sc[0, 9] = 0.1  # left_wrist below threshold, placed away from everything else
    kp[0, 9] = (100, 180)
    out = draw_poses(img, kp, sc, "coco", threshold=0.3, radius=3, thickness=1)
    assert img.max() == 0  # input untouched
    ls = COCO.index("left_shoulder")
    x, y = int(kp[0, ls, 0]), 100
    np.testing.assert_array_equal(out[y, x], COCO.keypoint_colors[ls])
    assert out[150:200].max() == 0  # neither the wrist nor the elbow-wrist limb is drawn
    assert out[100, 20:180].any(axis=-1).mean() > 0.9  # the other limbs are
    out2 = draw_poses(img, kp, np.ones((1, 17)), "coco", bboxes=np.array([[10, 10, 50, 50]]), track_ids=[3])
    assert out2.sum() > out.sum()
    p = save_image(tmp_path / "sub" / "o.png", out2)
    np.testing.assert_array_equal(read_image(p), out2)
    assert [f.name for f in (tmp_path / "sub").iterdir()] == ["o.png"]


def test_nothing_drawn_below_threshold() -> None:
    img = np.full((50, 60, 3), 7, np.uint8)
    out = draw_poses(img, np.full((2, 17, 2), 25.0), np.zeros((2, 17)), "coco")
    np.testing.assert_array_equal(out, img)


def test_draw_with_no_people_returns_unchanged_copy():
    image = np.full((40, 30, 3), 7, np.uint8)
    for kps, scores in ((np.zeros((0, 17, 2)), np.zeros((0, 17))), (np.zeros((0,)), None)):
        out = draw_poses(image, kps, scores)
        assert out is not image and np.array_equal(out, image)
