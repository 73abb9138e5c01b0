"""Multi-person pose tracking: Hungarian matching on OKS and box IoU, with track birth/ageing/death.

Each frame's instances are matched to the live tracks by minimising a cost that mixes keypoint
similarity (OKS against the track's last pose) and box IoU; pairs whose similarity is below a
threshold stay unmatched. Unmatched instances start new tracks (ids never reused); tracks
unmatched for more than ``max_age`` frames die. Ids therefore stay stable while a person is seen.

With ``appearance_weight > 0`` and per-instance appearance embeddings
(:func:`pyramidpose.inference.reid.appearance_embedding`), the similarity also weighs how alike the
clothes look, a match needs at least ``min_appearance`` of it, and a track lost for up to ``max_age``
frames is re-identified by appearance alone (its last pose is stale by then).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from pyramidpose.evaluation.oks import oks
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
    """OKS (len(a), len(b)) between poses (N, K, 2), normalised by the areas of ``b`` (floored at 1,
    no epsilon; :func:`pyramidpose.evaluation.oks.oks`).

    Keypoints whose score is below ``score_threshold`` in either pose are ignored; a pair with no
    keypoint in common has OKS 0.
    """
    a = np.asarray(kpts_a, np.float64)
    b = np.asarray(kpts_b, np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    va = np.ones(a.shape[:2], bool) if scores_a is None else np.asarray(scores_a) >= score_threshold
    vb = np.ones(b.shape[:2], bool) if scores_b is None else np.asarray(scores_b) >= score_threshold
    area = np.asarray(areas_b, np.float64)[None, :]
    return oks(a[:, None], b[None], sigmas, area, visible=va[:, None] & vb[None], area_floor=1.0, eps=0.0)


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
    embedding: np.ndarray | None = None  # appearance (R, D), a running mean per region
    embedding_mask: np.ndarray | None = None  # (R,) regions seen so far


class PoseTracker:
    """Assigns stable track ids to per-frame pose instances.

    Args:
        oks_weight: weight of OKS in the similarity (the rest is box IoU).
        min_similarity: matches with a lower similarity are rejected (new track instead).
        max_age: a track unmatched for more than this many frames is removed.
        sigmas: OKS sigmas of the keypoint layout (COCO by default).
        appearance_weight: weight of the appearance similarity (0: pose and box only).
        min_appearance: with appearance, matches whose appearance similarity is lower are rejected.
        appearance_momentum: a track's embedding keeps this much of its past at each match.
    """

    def __init__(
        self,
        oks_weight: float = 0.5,
        min_similarity: float = 0.15,
        max_age: int = 10,
        sigmas: np.ndarray | None = None,
        appearance_weight: float = 0.0,
        min_appearance: float = 0.0,
        appearance_momentum: float = 0.8,
    ) -> None:
        self.oks_weight = oks_weight
        self.min_similarity = min_similarity
        self.max_age = max_age
        self.sigmas = np.asarray(sigmas if sigmas is not None else COCO.sigmas_array())
        self.appearance_weight = appearance_weight
        self.min_appearance = min_appearance
        self.appearance_momentum = appearance_momentum
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

    def appearance(self, embeddings: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Appearance similarity (tracks, instances) in [0, 1]; 0 for tracks without an embedding."""
        from pyramidpose.inference.reid import appearance_similarity

        out = np.zeros((len(self.tracks), len(embeddings)))
        have = [i for i, t in enumerate(self.tracks) if t.embedding is not None]
        if have and len(embeddings):
            te = np.stack([self.tracks[i].embedding for i in have])
            tm = np.stack([self.tracks[i].embedding_mask for i in have])
            out[have] = appearance_similarity(te, tm, embeddings, masks)
        return out

    def update(
        self,
        keypoints: np.ndarray,
        keypoint_scores: np.ndarray,
        bboxes: np.ndarray,
        embeddings: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Match one frame's instances (N, K, 2), (N, K), (N, 4) xywh; returns their ids (N,).

        ``embeddings``: optional appearance ``(N, R, D)`` histograms and ``(N, R)`` masks, used when
        ``appearance_weight > 0``.
        """
        self.frame_index += 1
        bboxes = np.asarray(bboxes, np.float64).reshape(-1, 4)
        k = len(self.sigmas)
        keypoints = np.asarray(keypoints, np.float64).reshape(len(bboxes), k, 2)
        keypoint_scores = np.asarray(keypoint_scores, np.float64).reshape(len(bboxes), k)
        n = len(bboxes)
        ids = np.full(n, -1, dtype=np.int64)
        sim = self.similarity(keypoints, keypoint_scores, bboxes)
        use_app = self.appearance_weight > 0 and embeddings is not None
        allowed = np.ones(sim.shape, bool)
        if use_app and sim.size:
            app = self.appearance(*embeddings)  # type: ignore[misc]
            lost = np.array([t.age > 0 for t in self.tracks])[:, None]
            # a lost track's last pose and box are stale: it is re-identified by appearance alone
            pose = np.where(lost, 0.0, sim)
            sim = (1.0 - self.appearance_weight) * pose + self.appearance_weight * app
            allowed = app >= self.min_appearance
        matched_tracks: set[int] = set()
        if sim.size:
            rows, cols = linear_sum_assignment(-np.where(allowed, sim, -1.0))
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.min_similarity and allowed[r, c]:
                    t = self.tracks[r]
                    t.keypoints, t.keypoint_scores, t.bbox = keypoints[c], keypoint_scores[c], bboxes[c]
                    if use_app:
                        self._blend(t, embeddings[0][c], embeddings[1][c])  # type: ignore[index]
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
            if use_app:
                self._blend(t, embeddings[0][c], embeddings[1][c])  # type: ignore[index]
            t.history.append(self.frame_index)
            self.tracks.append(t)
            ids[c] = t.track_id
            self._next_id += 1
        return ids

    def _blend(self, track: Track, emb: np.ndarray, mask: np.ndarray) -> None:
        """Fold one observation into a track's per-region running mean (regions seen for the first
        time are taken as they are)."""
        emb, mask = np.asarray(emb, np.float32), np.asarray(mask, bool)
        if track.embedding is None:
            track.embedding, track.embedding_mask = emb.copy(), mask.copy()
            return
        m = self.appearance_momentum
        old = track.embedding_mask
        both = old & mask
        track.embedding[both] = m * track.embedding[both] + (1 - m) * emb[both]
        track.embedding[mask & ~old] = emb[mask & ~old]
        track.embedding_mask = old | mask
