"""Pose-aware appearance embedding, its fusion in the tracker, and the identity-switch counter."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from pyramidpose.inference.reid import appearance_embedding, appearance_similarity, clip_id_switches
from pyramidpose.inference.tracking import PoseTracker

REPO = Path(__file__).resolve().parents[1]


def test_id_switch_counter() -> None:
    gt = [np.array([0, 1]), np.array([0, 1]), np.array([1]), np.array([0, 1]), np.array([0, 1])]
    tr = [np.array([5, 6]), np.array([5, 6]), np.array([5]), np.array([7, 5]), np.array([7, 6])]
    # frame 2: identity 1 takes track 5 (switch); frame 3: identity 0 -> 7 (switch), 1 stays 5;
    # frame 4: identity 1 -> 6 (switch)
    assert clip_id_switches(gt, tr) == 3
    assert clip_id_switches(gt, gt) == 0


def _figure(image: np.ndarray, x0: float, shirt: tuple, trousers: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Paint a blocky person at ``x0`` and return its keypoints (17, 2) and box."""
    kp = np.array([
        [20, 10], [17, 8], [23, 8], [14, 9], [26, 9], [10, 25], [30, 25], [6, 45], [34, 45], [5, 62], [35, 62],
        [13, 65], [27, 65], [13, 90], [27, 90], [13, 115], [27, 115],
    ], float) + [x0, 20]  # fmt: skip
    x = int(x0)
    image[45:85, x + 5 : x + 35] = shirt  # torso
    image[45:85, x : x + 5] = shirt
    image[45:85, x + 35 : x + 41] = shirt
    image[85:140, x + 8 : x + 32] = trousers
    return kp, np.array([x0 - 2, 18, 44, 125], float)


def test_embedding_tells_clothes_apart() -> None:
    img = np.full((160, 200, 3), 90, np.uint8)
    kp_a, box_a = _figure(img, 10, (200, 30, 30), (30, 30, 160))
    kp_b, box_b = _figure(img, 110, (30, 180, 40), (200, 200, 200))
    sc = np.full(17, 0.9)
    ea, ma = appearance_embedding(img, kp_a, sc, box_a)
    eb, mb = appearance_embedding(img, kp_b, sc, box_b)
    assert ma.all() and mb.all()
    same = appearance_similarity(ea[None], ma[None], ea[None], ma[None])[0, 0]
    diff = appearance_similarity(ea[None], ma[None], eb[None], mb[None])[0, 0]
    assert same > 0.999 and diff < 0.6
    low = sc.copy()
    low[[9, 10]] = 0.1  # unconfident wrists: no lower-arm regions
    assert appearance_embedding(img, kp_a, low, box_a)[1].sum() == ma.sum() - 2


def test_appearance_reidentifies_after_a_swap_of_places() -> None:
    """Two people swap places while hidden: pose and box alone follow the places, appearance the people."""
    tracker = {w: PoseTracker(appearance_weight=w, min_appearance=0.8 if w else 0.0) for w in (0.0, 0.5)}
    switches = {}
    for w, trk in tracker.items():
        gts, ids = [], []
        for frame in range(6):
            img = np.full((160, 200, 3), 90, np.uint8)
            xs = (10, 110) if frame < 3 else (110, 10)  # swapped after frame 2
            kp_a, box_a = _figure(img, xs[0], (200, 30, 30), (30, 30, 160))
            kp_b, box_b = _figure(img, xs[1], (30, 180, 40), (200, 200, 200))
            kp, bx, sc = np.stack([kp_a, kp_b]), np.stack([box_a, box_b]), np.full((2, 17), 0.9)
            emb = [appearance_embedding(img, k, s, b) for k, s, b in zip(kp, sc, bx)]
            ids.append(trk.update(kp, sc, bx, (np.stack([e for e, _ in emb]), np.stack([m for _, m in emb]))))
            gts.append(np.array([0, 1]))
        switches[w] = clip_id_switches(gts, ids)
    assert switches[0.0] == 2 and switches[0.5] == 0


def test_crossing_clips_from_coco_mini(coco_mini: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("reid_crossing", REPO / "benchmarks" / "reid_crossing.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    assert mod.main(["--data", str(coco_mini), "--clips", "4", "--frames", "30"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    without, with_ = (int(v.strip(",")) for v in last.split()[-3::2])
    assert with_ < without
