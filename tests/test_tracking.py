"""Pose tracking: OKS/IoU similarity, Hungarian assignment, birth/ageing/death, stable ids."""

from __future__ import annotations

import numpy as np
import pytest

from pyramidpose.inference.tracking import PoseTracker, oks_matrix
from pyramidpose.skeletons import COCO


def _person(cx: float, cy: float, size: float = 100.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    template = rng.uniform(-0.5, 0.5, (17, 2)) * np.array([0.5, 1.0])
    kp = np.array([cx, cy]) + template * size
    box = np.array([cx - size * 0.3, cy - size * 0.55, size * 0.6, size * 1.1])
    return kp, box


def _frame(people):
    kps = np.stack([p[0] for p in people]) if people else np.zeros((0, 17, 2))
    boxes = np.stack([p[1] for p in people]) if people else np.zeros((0, 4))
    return kps, np.ones(kps.shape[:2]), boxes


def test_oks_matrix_basics():
    kp, box = _person(50, 50)
    o = oks_matrix(kp[None], np.stack([kp, kp + 30]), np.array([1e4, 1e4]), COCO.sigmas_array())
    assert o.shape == (1, 2)
    assert o[0, 0] == pytest.approx(1.0)
    assert 0 < o[0, 1] < 0.5
    # no keypoint confident in both poses -> 0
    o2 = oks_matrix(kp[None], kp[None], np.array([1e4]), COCO.sigmas_array(), np.zeros((1, 17)), np.ones((1, 17)))
    assert o2[0, 0] == 0.0


def test_ids_stay_stable_while_people_move_and_swap_order():
    tr = PoseTracker()
    ids_seen = []
    for t in range(8):
        a = _person(100 + 5 * t, 200, seed=1)
        b = _person(400 - 5 * t, 210, seed=2)
        people = [a, b] if t % 2 == 0 else [b, a]  # the detector's order changes
        ids = tr.update(*_frame(people))
        ids_seen.append(ids if t % 2 == 0 else ids[::-1])
    ids_seen = np.array(ids_seen)
    assert (ids_seen[:, 0] == ids_seen[0, 0]).all()
    assert (ids_seen[:, 1] == ids_seen[0, 1]).all()
    assert ids_seen[0, 0] != ids_seen[0, 1]


def test_hungarian_beats_greedy_matching():
    """Track A sits between two new detections; greedy would give A the nearer one and push B to
    a new id, the optimal assignment keeps both."""
    tr = PoseTracker(oks_weight=0.0, min_similarity=0.1)  # IoU only, for a hand-made cost
    box_a = np.array([0, 0, 10, 10.0])
    box_b = np.array([6, 0, 10, 10.0])
    kp = np.zeros((17, 2))
    tr.update(np.stack([kp, kp]), np.ones((2, 17)), np.stack([box_a, box_b]))
    d1 = np.array([3, 0, 10, 10.0])  # IoU with A 0.538, with B 0.538 -> tie-ish
    d2 = np.array([-2, 0, 10, 10.0])  # IoU with A 0.667, with B 0.0
    ids = tr.update(np.stack([kp, kp]), np.ones((2, 17)), np.stack([d1, d2]))
    assert sorted(ids.tolist()) == [1, 2]
    assert ids[1] == 1 and ids[0] == 2


def test_birth_ageing_and_death():
    tr = PoseTracker(max_age=2)
    a = _person(100, 100, seed=3)
    (ida,) = tr.update(*_frame([a]))
    for _ in range(2):  # A unseen for 2 frames: still alive
        assert len(tr.update(*_frame([]))) == 0
    assert [t.track_id for t in tr.tracks] == [ida]
    (again,) = tr.update(*_frame([a]))
    assert again == ida  # re-found within max_age keeps its id
    for _ in range(3):  # unseen for 3 frames > max_age: dies
        tr.update(*_frame([]))
    assert tr.tracks == []
    (new,) = tr.update(*_frame([a]))
    assert new != ida  # ids are never reused


def test_far_away_instance_starts_a_new_track():
    tr = PoseTracker()
    (i1,) = tr.update(*_frame([_person(100, 100, seed=4)]))
    ids = tr.update(*_frame([_person(900, 700, seed=4)]))
    assert ids[0] != i1
