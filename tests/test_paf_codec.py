"""Part affinity field codec: targets, limb scores, grouping, and the ground-truth round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyramidpose.codecs.paf import PafCodec, _greedy_match, limb_order, roundtrip_results
from pyramidpose.evaluation.coco_eval import coco_keypoint_eval
from pyramidpose.skeletons import COCO

MINI = Path(__file__).parent / "data" / "coco" / "person_keypoints_mini.json"


def _person(x0: float, y0: float, scale: float = 1.0) -> np.ndarray:
    """A standing COCO person (input pixels), all keypoints labelled."""
    pts = np.array([
        [0, 0], [-3, -3], [3, -3], [-6, -1], [6, -1], [-12, 12], [12, 12], [-16, 32], [16, 32],
        [-18, 50], [18, 50], [-8, 55], [8, 55], [-9, 85], [9, 85], [-9, 115], [9, 115],
    ], float)  # fmt: skip
    pts = pts * scale + [x0, y0]
    return np.concatenate([pts, np.full((17, 1), 2.0)], axis=1)


def test_field_is_a_unit_vector_along_the_limb_and_zero_elsewhere() -> None:
    codec = PafCodec(heatmap_size=(48, 48), stride=4, limb_width=1.0)
    kp = np.zeros((1, 17, 3))
    kp[0, 13] = [40, 40, 2]  # left knee
    kp[0, 15] = [40, 140, 2]  # left ankle, straight below
    heat, pafs = codec.encode(kp)
    li = codec.limbs.index((15, 13))  # ankle -> knee: pointing up
    fx, fy = pafs[2 * li], pafs[2 * li + 1]
    assert fy[20, 10] == pytest.approx(-1.0) and fx[20, 10] == pytest.approx(0.0)
    assert fy[20, 13] == 0.0  # 3 output pixels to the side: outside limb_width
    assert np.abs(np.delete(pafs, [2 * li, 2 * li + 1], axis=0)).max() == 0.0
    assert heat[13].max() == pytest.approx(1.0) and heat[0].max() == 0.0


def test_overlapping_limbs_are_averaged() -> None:
    codec = PafCodec(heatmap_size=(40, 40), stride=1, limb_width=1.0)
    kp = np.zeros((2, 17, 3))
    kp[0, 13], kp[0, 15] = [20, 5, 2], [20, 35, 2]  # pointing up (ankle -> knee)
    kp[1, 13], kp[1, 15] = [5, 20, 2], [35, 20, 2]  # pointing left
    _, pafs = codec.encode(kp)
    li = codec.limbs.index((15, 13))
    assert pafs[2 * li : 2 * li + 2, 20, 20] == pytest.approx([-0.5, -0.5])


def test_limb_order_is_breadth_first_over_a_spanning_tree() -> None:
    limbs = COCO.limbs + COCO.redundant_limbs
    order = limb_order(limbs, 17)
    assert sorted(order) == list(range(len(limbs)))
    seen = {int(np.argmax(np.bincount(np.ravel(limbs), minlength=17)))}
    for i in order[:16]:  # the 16 tree edges each reach one new keypoint, from one already reached
        a, b = limbs[i]
        assert (a in seen) != (b in seen)
        seen |= {a, b}
    assert len(seen) == 17


def test_greedy_matching_takes_best_pairs_once() -> None:
    s = np.array([[0.9, 0.8], [0.85, -np.inf]])
    assert _greedy_match(s) == [(0, 0, 0.9)]  # row 1 only pairs with column 0, already taken
    s = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert [(a, b) for a, b, _ in _greedy_match(s)] == [(0, 0), (1, 1)]


def test_two_crossing_people_are_grouped_exactly() -> None:
    codec = PafCodec(heatmap_size=(96, 96), stride=4)
    a, b = _person(150, 40, 2.5), _person(200, 60, 2.6)  # arms and legs interleaved
    people, scores = codec.decode(*codec.encode(np.stack([a, b])))
    assert len(people) == 2 and scores[0] >= scores[1]
    for gt in (a, b):
        err = np.abs(people[..., :2] - gt[None, :, :2]).max(axis=(1, 2)).min()
        assert err < 0.2  # sub-pixel peaks at stride 4, every keypoint with its own person


def test_missing_joint_is_bridged_by_a_redundant_limb() -> None:
    codec = PafCodec(heatmap_size=(96, 96), stride=4)
    p = _person(190, 40, 2.5)
    p[[3, 4, 5, 6], 2] = 0  # no ears, no shoulders: nothing joins the head to the body
    p[7, 2] = 0  # no left elbow (and no shoulder): the left wrist is alone
    people, _ = codec.decode(*codec.encode(p[None]))
    sizes = sorted((q[:, 2] > 0).sum() for q in people)
    assert sizes == [1, 3, 8]  # wrist; nose and eyes; right arm and legs
    p = _person(190, 40, 2.5)
    p[7, 2] = 0  # only the elbow missing: shoulder-wrist keeps the person whole
    people, _ = codec.decode(*codec.encode(p[None]))
    assert len(people) == 1 and (people[0, :, 2] > 0).sum() == 16


def test_decode_rejects_wrong_shapes() -> None:
    codec = PafCodec(heatmap_size=(8, 8))
    with pytest.raises(ValueError, match="expected heatmaps"):
        codec.decode(np.zeros((17, 8, 8)), np.zeros((3, 8, 8)))


def test_roundtrip_on_the_bundled_images() -> None:
    coco = json.loads(MINI.read_text())
    res = roundtrip_results(coco, 512, stride=4)
    for image_id in (183709, 434204):  # 4 and 2 people, every one recovered
        sub = {**coco, "annotations": [a for a in coco["annotations"] if a["image_id"] == image_id]}
        sub["images"] = [im for im in coco["images"] if im["id"] == image_id]
        assert coco_keypoint_eval(sub, [r for r in res if r["image_id"] == image_id])["AP"] >= 0.95
    # 229358: one person's right wrist has no labelled neighbour, so no field can join it (AP 0.75)
    assert coco_keypoint_eval(coco, res)["AP"] >= 0.9


def test_roundtrip_on_coco_mini(coco_mini: Path) -> None:
    for split, floor in (("val", 0.95), ("train", 0.95)):
        coco = json.loads((coco_mini / f"annotations/person_keypoints_{split}2017.json").read_text())
        stats = coco_keypoint_eval(coco, roundtrip_results(coco, 512, stride=4))
        assert stats["AP"] >= floor, split
