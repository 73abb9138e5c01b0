"""The one OKS kernel (evaluation/oks.py): each former OKS implementation, kept here verbatim as a
reference, gives bit-identical outputs through the kernel on many random cases (outliers, ties,
zero areas, invisible keypoints). COCO evaluation itself is checked against pycocotools in
test_coco_eval.py."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from pyramidpose.evaluation.metrics import pck_bbox_per_axis
from pyramidpose.evaluation.nms import pairwise_oks
from pyramidpose.evaluation.oks import EPS, default_sigmas, oks, oks_scale
from pyramidpose.inference.tracking import oks_matrix
from pyramidpose.skeletons import COCO

N_CASES = 150


def _old_nms_pairwise_oks(keypoints, areas, sigmas=None, vis_thr=None):
    kp = np.asarray(keypoints, dtype=np.float64)
    a = np.asarray(areas, dtype=np.float64).reshape(-1)
    sig = default_sigmas() if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    var = (2 * sig) ** 2
    d2 = ((kp[:, None, :, :2] - kp[None, :, :, :2]) ** 2).sum(-1)
    scale = (a[:, None] + a[None, :]) / 2 + np.spacing(1)
    ex = np.exp(-d2 / var / scale[:, :, None] / 2)
    if vis_thr is None:
        return ex.mean(-1)
    vis = kp[:, :, 2] > vis_thr
    both = vis[:, None, :] & vis[None, :, :]
    n = both.sum(-1)
    return np.where(n > 0, (ex * both).sum(-1) / np.maximum(n, 1), 0.0)


def _old_tracking_oks(a, b, areas_b, sigmas, scores_a=None, scores_b=None, thr=0.2):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
    e = d2 / var / (2.0 * np.maximum(np.asarray(areas_b, np.float64), 1.0)[None, :, None])
    sim = np.exp(-e)
    va = np.ones(a.shape[:2], bool) if scores_a is None else np.asarray(scores_a) >= thr
    vb = np.ones(b.shape[:2], bool) if scores_b is None else np.asarray(scores_b) >= thr
    mask = va[:, None] & vb[None]
    n = mask.sum(-1)
    return np.where(n > 0, (sim * mask).sum(-1) / np.maximum(n, 1), 0.0)


def _old_pck_oks(pred, gt, vis, area, sigmas):
    if not vis.any():
        return 0.0
    d2 = ((pred - gt) ** 2).sum(-1)
    var = (2 * sigmas) ** 2
    e = d2 / var / (max(area, 1e-6) + np.spacing(1)) / 2
    return float(np.exp(-e[vis]).mean())


def _old_pck_from_results(gt, results, thr=0.2):
    preds_by_image = defaultdict(list)
    for r in results:
        preds_by_image[int(r["image_id"])].append(np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3))
    gts_by_image = defaultdict(list)
    for a in gt.get("annotations", []):
        if a.get("iscrowd", 0) or a.get("num_keypoints", 0) <= 0:
            continue
        gts_by_image[int(a["image_id"])].append(a)
    correct = total = 0
    for image_id, anns in gts_by_image.items():
        preds = preds_by_image.get(image_id, [])
        used = set()
        for a in sorted(anns, key=lambda a: -a.get("area", 0.0)):
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            vis = kp[:, 2] > 0
            total += int(vis.sum())
            sig = np.asarray(COCO.sigmas, dtype=np.float64)
            scores = [(_old_pck_oks(p[:, :2], kp[:, :2], vis, float(a.get("area", 0.0)), sig), i)
                      for i, p in enumerate(preds) if i not in used]  # fmt: skip
            if not scores:
                continue
            _, best = max(scores)
            used.add(best)
            w, h = float(a["bbox"][2]), float(a["bbox"][3])
            norm = np.array([max(w, 1.0), max(h, 1.0)])
            dist = np.linalg.norm((preds[best][:, :2] - kp[:, :2]) / norm, axis=-1)
            correct += int(((dist < thr) & vis).sum())
    return {"pck": correct / total if total else float("nan"), "correct": correct, "total": total}


def _poses(rng: np.random.Generator, n: int, k: int = 17) -> np.ndarray:
    """Poses around a few centres (near-duplicates, far ones, exact copies), with confidences."""
    centres = rng.uniform(0, 640, (max(1, n // 2), 1, 2))
    xy = centres[rng.integers(0, len(centres), n)] + rng.normal(0, rng.choice([0.5, 5, 40]), (n, k, 2))
    if n > 2:
        xy[1] = xy[0]  # an exact duplicate
    conf = rng.uniform(0, 1, (n, k, 1)).round(1)  # ties at the thresholds
    return np.concatenate([xy, conf], axis=2)


def test_scale_parameters() -> None:
    assert oks_scale(0.0) == EPS and oks_scale(-3.0, area_floor=1.0, eps=0.0) == 1.0
    assert oks_scale(0.0, area_floor=1e-6) == 1e-6 + EPS


def test_nms_oks_is_bit_identical_to_the_former_implementation() -> None:
    rng = np.random.default_rng(0)
    for case in range(N_CASES):
        n = int(rng.integers(1, 12))
        kp = _poses(rng, n)
        areas = rng.choice([0.0, 1.0, 50.0, 4000.0, 1e5], n) * rng.uniform(0.5, 1.5, n)
        for vis_thr in (None, 0.3, 0.5):
            new, old = pairwise_oks(kp, areas, vis_thr=vis_thr), _old_nms_pairwise_oks(kp, areas, vis_thr=vis_thr)
            assert np.array_equal(new, old), (case, vis_thr)


def test_tracking_oks_is_bit_identical_to_the_former_implementation() -> None:
    rng = np.random.default_rng(1)
    sig = COCO.sigmas_array()
    for case in range(N_CASES):
        na, nb = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        a, b = _poses(rng, na), _poses(rng, nb)
        areas = rng.choice([0.0, 0.5, 30.0, 5000.0], nb) * rng.uniform(0.5, 1.5, nb)
        for scores in ((None, None), (a[..., 2], b[..., 2])):
            new = oks_matrix(a[..., :2], b[..., :2], areas, sig, *scores)
            old = _old_tracking_oks(a[..., :2], b[..., :2], areas, sig, *scores)
            assert np.array_equal(new, old), case


def test_pck_matching_outputs_unchanged() -> None:
    """PCK matching's OKS may differ from its former masked mean in the last bit (the kernel sums
    with zeros for hidden keypoints); the matches and PCK it reports must not change."""
    rng = np.random.default_rng(2)
    max_oks_diff = 0.0
    for case in range(N_CASES):
        anns, results = [], []
        for image_id in range(3):
            people = _poses(rng, int(rng.integers(1, 5)))
            for p in people:
                kp = p.copy()
                kp[:, 2] = np.where(rng.uniform(size=17) < 0.3, 0, 2)
                w, h = rng.uniform(5, 200, 2)
                anns.append({"id": len(anns) + 1, "image_id": image_id, "iscrowd": 0, "num_keypoints": int((kp[:, 2] > 0).sum()),
                             "keypoints": kp.reshape(-1).tolist(), "bbox": [0, 0, w, h],
                             "area": float(rng.choice([0.0, w * h]))})  # fmt: skip
                for _ in range(int(rng.integers(0, 3))):
                    pred = kp.copy()
                    pred[:, :2] += rng.normal(0, rng.choice([1, 10, 60]), (17, 2))
                    results.append({"image_id": image_id, "keypoints": pred.reshape(-1).tolist(), "score": 1.0})
                vis = kp[:, 2] > 0
                sig = COCO.sigmas_array()
                new = float(oks(pred, kp, sig, anns[-1]["area"], visible=vis, area_floor=1e-6)) if results else 0.0
                old = _old_pck_oks(pred[:, :2], kp[:, :2], vis, anns[-1]["area"], sig) if results else 0.0
                max_oks_diff = max(max_oks_diff, abs(new - old))
        gt = {"annotations": anns}
        assert pck_bbox_per_axis(gt, results) == _old_pck_from_results(gt, results), case
    assert max_oks_diff < 1e-15


@pytest.mark.parametrize("k", [5, 17])
def test_oks_of_identical_poses_is_one_and_decays_with_distance(k: int) -> None:
    sig = np.full(k, 0.05)
    p = np.random.default_rng(3).uniform(0, 100, (k, 2))
    assert oks(p, p, sig, 100.0) == pytest.approx(1.0)
    far = oks(p, p + 5.0, sig, 100.0)
    near = oks(p, p + 1.0, sig, 100.0)
    assert 0 < far < near < 1
    assert oks(p, p, sig, 100.0, visible=np.zeros(k, bool)) == 0.0
