"""Multi-person pose tracking: Hungarian matching on OKS and box IoU, with track birth/ageing/death.

Each frame's instances are matched to the live tracks by minimising a cost that mixes keypoint
similarity (OKS against the track's last pose) and box IoU; pairs whose similarity is below a
threshold stay unmatched. Unmatched instances start new tracks (ids never reused); tracks
unmatched for more than ``max_age`` frames die. Ids therefore stay stable while a person is seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from pyramidpose.geometry.boxes import iou_xywh
from pyramidpose.skeletons import COCO


def oks_matrix(
    kpts_a: np.ndarray,
    kpts_b: np.ndarray,
    areas_b: np.ndarray,
    sigmas: np.ndarray,
    scores_a: np.ndarray | None = None,
    scores_b: np.ndarray | None = None,
    score_threshold: float = 0.2,
) -> np.ndarray:
    """OKS (len(a), len(b)) between poses (N, K, 2), normalised by the areas of ``b``.

    Keypoints whose score is below ``score_threshold`` in either pose are ignored; a pair with no
    keypoint in common has OKS 0.
    """
    a = np.asarray(kpts_a, np.float64)
    b = np.asarray(kpts_b, np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    d2 = ((a[:, None] - b[None]) ** 2).sum(-1)  # (A, B, K)
    e = d2 / var / (2.0 * np.maximum(np.asarray(areas_b, np.float64), 1.0)[None, :, None])
    sim = np.exp(-e)
    va = np.ones(a.shape[:2], bool) if scores_a is None else np.asarray(scores_a) >= score_threshold
    vb = np.ones(b.shape[:2], bool) if scores_b is None else np.asarray(scores_b) >= score_threshold
    mask = va[:, None] & vb[None]
    n = mask.sum(-1)
    return np.where(n > 0, (sim * mask).sum(-1) / np.maximum(n, 1), 0.0)


@dataclass
class Track:
    """One tracked person: its id, last pose and box, and how long since it was matched."""

    track_id: int
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    bbox: np.ndarray
    age: int = 0  # frames since the last match
    hits: int = 1  # frames matched in total
    history: list[int] = field(default_factory=list)  # frame indices where it was matched


class PoseTracker:
    """Assigns stable track ids to per-frame pose instances.

    Args:
        oks_weight: weight of OKS in the similarity (the rest is box IoU).
        min_similarity: matches with a lower similarity are rejected (new track instead).
        max_age: a track unmatched for more than this many frames is removed.
        sigmas: OKS sigmas of the keypoint layout (COCO by default).
    """

    def __init__(
        self,
        oks_weight: float = 0.5,
        min_similarity: float = 0.15,
        max_age: int = 10,
        sigmas: np.ndarray | None = None,
    ) -> None:
        self.oks_weight = oks_weight
        self.min_similarity = min_similarity
        self.max_age = max_age
        self.sigmas = np.asarray(sigmas if sigmas is not None else COCO.sigmas_array())
        self.tracks: list[Track] = []
        self._next_id = 1
        self.frame_index = -1

    def reset(self) -> None:
        self.tracks = []
        self._next_id = 1
        self.frame_index = -1

    def similarity(
        self, keypoints: np.ndarray, keypoint_scores: np.ndarray, bboxes: np.ndarray
    ) -> np.ndarray:
        """Similarity (tracks, instances) in [0, 1]: weighted OKS and box IoU."""
        if not self.tracks or len(bboxes) == 0:
            return np.zeros((len(self.tracks), len(bboxes)))
        tk = np.stack([t.keypoints for t in self.tracks])
        ts = np.stack([t.keypoint_scores for t in self.tracks])
        tb = np.stack([t.bbox for t in self.tracks])
        areas = np.asarray(bboxes, np.float64)[:, 2] * np.asarray(bboxes, np.float64)[:, 3] * 0.53
        oks = oks_matrix(tk, keypoints, areas, self.sigmas, ts, keypoint_scores)
        iou = iou_xywh(tb, bboxes)
        return self.oks_weight * oks + (1.0 - self.oks_weight) * iou

    def update(
        self, keypoints: np.ndarray, keypoint_scores: np.ndarray, bboxes: np.ndarray
    ) -> np.ndarray:
        """Match one frame's instances (N, K, 2), (N, K), (N, 4) xywh; returns their ids (N,)."""
        self.frame_index += 1
        bboxes = np.asarray(bboxes, np.float64).reshape(-1, 4)
        k = len(self.sigmas)
        keypoints = np.asarray(keypoints, np.float64).reshape(len(bboxes), k, 2)
        keypoint_scores = np.asarray(keypoint_scores, np.float64).reshape(len(bboxes), k)
        n = len(bboxes)
        ids = np.full(n, -1, dtype=np.int64)
        sim = self.similarity(keypoints, keypoint_scores, bboxes)
        matched_tracks: set[int] = set()
        if sim.size:
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.min_similarity:
                    t = self.tracks[r]
                    t.keypoints, t.keypoint_scores, t.bbox = keypoints[c], keypoint_scores[c], bboxes[c]
                    t.age, t.hits = 0, t.hits + 1
                    t.history.append(self.frame_index)
                    ids[c] = t.track_id
                    matched_tracks.add(r)
        for r, t in enumerate(self.tracks):
            if r not in matched_tracks:
                t.age += 1
        self.tracks = [t for t in self.tracks if t.age <= self.max_age]
        for c in np.flatnonzero(ids < 0):
            t = Track(self._next_id, keypoints[c], keypoint_scores[c], bboxes[c])
            t.history.append(self.frame_index)
            self.tracks.append(t)
            ids[c] = t.track_id
            self._next_id += 1
        return ids
