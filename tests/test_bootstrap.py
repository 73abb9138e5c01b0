"""Per-image COCO matching for bootstrap intervals: equal to the full COCO evaluation, and sound intervals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pyramidpose.evaluation.bootstrap import (
    ap_from_table,
    bootstrap,
    match_images,
    pck_per_image,
    percentile_ci,
)
from pyramidpose.evaluation.coco_eval import coco_keypoint_eval
from pyramidpose.evaluation.metrics import pck_bbox_per_axis

GT = Path(__file__).parent / "data" / "coco" / "person_keypoints_mini.json"


def _noisy_results(gt: dict, seed: int, noise: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        if a.get("num_keypoints", 0) == 0:
            continue
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        for _ in range(2 if rng.random() < 0.3 else 1):  # some duplicates: false positives
            p = kp.copy()
            p[:, :2] += rng.normal(0, noise * np.sqrt(a["area"]) * rng.uniform(0.2, 2.0), (len(p), 2))
            p[:, 2] = 1.0
            out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": p.ravel().tolist(),
                        "score": float(rng.uniform())})  # fmt: skip
    return out


def _many_images(gt: dict, copies: int) -> dict:
    """The mini ground truth repeated with new image ids (a larger test set for the interval test)."""
    imgs, anns = [], []
    for c in range(copies):
        for im in gt["images"]:
            imgs.append(dict(im, id=im["id"] * 100 + c))
        for a in gt["annotations"]:
            anns.append(dict(a, id=len(anns) + 1, image_id=a["image_id"] * 100 + c))
    return dict(gt, images=imgs, annotations=anns)


def test_unit_weights_reproduce_the_coco_evaluation() -> None:
    gt = json.loads(GT.read_text())
    for seed, noise in ((0, 0.05), (1, 0.1)):
        res = _noisy_results(gt, seed, noise)
        ref = coco_keypoint_eval(gt, res)
        table = match_images(gt, res)
        assert abs(ap_from_table(table) - ref["AP"]) < 1e-12
        assert abs(ap_from_table(table, thresholds=0) - ref["AP50"]) < 1e-12
        assert abs(ap_from_table(table, thresholds=5) - ref["AP75"]) < 1e-12
        for area, key in (("medium", "APm"), ("large", "APl")):
            got = ap_from_table(match_images(gt, res, area=area))
            assert (np.isnan(got) and ref[key] < 0) or abs(got - ref[key]) < 1e-12
        ids, correct, total = pck_per_image(gt, res)
        assert correct.sum() / total.sum() == pck_bbox_per_axis(gt, res)["pck"]


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_more_images() -> None:
    gt0 = json.loads(GT.read_text())
    widths = []
    for copies in (4, 16):
        gt = _many_images(gt0, copies)
        res = _noisy_results(gt, 3, 0.08)
        table = match_images(gt, res)
        point = ap_from_table(table)
        draws = bootstrap(len(gt["images"]), lambda w, t=table: ap_from_table(t, w), n_boot=300, seed=0)
        lo, hi = percentile_ci(draws)
        assert lo <= point <= hi and hi > lo
        widths.append(hi - lo)
        again = bootstrap(len(gt["images"]), lambda w, t=table: ap_from_table(t, w), n_boot=300, seed=0)
        np.testing.assert_array_equal(draws, again)  # seeded
    assert widths[1] < 0.75 * widths[0]  # 4x the images: about half the width


def test_a_subset_ignores_other_people_and_their_detections() -> None:
    gt = json.loads(GT.read_text())
    keep_ids = {a["id"] for a in gt["annotations"] if a["area"] > 10000}
    sub = match_images(gt, [], gt_keep=lambda a: a["id"] in keep_ids)
    assert sub.npig.sum() == sum(1 for a in gt["annotations"] if a["id"] in keep_ids and a["num_keypoints"] > 0)
    only = dict(gt, annotations=[a for a in gt["annotations"] if a["id"] in keep_ids])
    dets = _noisy_results(only, 0, 0.05)  # detections of the kept people only
    assert 0 < sub.npig.sum() < sum(1 for a in gt["annotations"] if a["num_keypoints"] > 0)
    got = ap_from_table(match_images(gt, dets, gt_keep=lambda a: a["id"] in keep_ids))
    assert abs(got - coco_keypoint_eval(only, dets)["AP"]) < 1e-12
