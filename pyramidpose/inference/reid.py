"""Pose-aware appearance for tracking: colour histograms taken where the keypoints say the body is.

:func:`appearance_embedding` describes one person by the colours of body regions placed by its
keypoints (torso quadrilateral; upper and lower arms and legs as thick segments): per region a
hue x saturation (8 x 4) and value (4) histogram of the pixels under it, normalised. Regions whose
keypoints are not confident are marked missing. :func:`appearance_similarity` compares two people by
the Bhattacharyya coefficient of their histograms, averaged over the regions both show. Because the
regions follow the pose, a person is described by their clothes, not by the background of their box.

:class:`~pyramidpose.inference.tracking.PoseTracker` fuses this similarity with OKS and box IoU, which
keeps identities through crossings and re-identifies a person after a short occlusion.
:func:`clip_id_switches` counts identity switches against known identities (the MOT definition).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Body regions as keypoint indices (COCO): the torso polygon, then limb segments.
TORSO = (5, 6, 12, 11)
SEGMENTS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16))
NUM_REGIONS = 1 + len(SEGMENTS)
HIST_DIM = 8 * 4 + 4


def _histogram(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    if mask.sum() < 8:
        return None
    pix = hsv[mask > 0].astype(np.int64)
    hs = np.bincount((pix[:, 0] * 8 // 180) * 4 + pix[:, 1] * 4 // 256, minlength=32)
    v = np.bincount(pix[:, 2] * 4 // 256, minlength=4)
    h = np.concatenate([hs / hs.sum(), v / v.sum()]).astype(np.float32)
    return h / h.sum()


def appearance_embedding(
    image: np.ndarray,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    bbox: np.ndarray,
    score_threshold: float = 0.3,
    width_fraction: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Region histograms ``(R, D)`` and a mask ``(R,)`` of one COCO-17 person in an RGB ``image``.

    ``bbox`` (x, y, w, h) sets the limb width (``width_fraction`` of the box height, at least 3 px)
    and the region of interest; keypoints below ``score_threshold`` do not place regions.
    """
    h_img, w_img = image.shape[:2]
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    x1, y1 = min(int(np.ceil(x + w)), w_img), min(int(np.ceil(y + h)), h_img)
    emb = np.zeros((NUM_REGIONS, HIST_DIM), np.float32)
    ok = np.zeros(NUM_REGIONS, bool)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return emb, ok
    hsv = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    pts = np.asarray(keypoints, np.float64)[:, :2] - [x0, y0]
    conf = np.asarray(keypoint_scores) >= score_threshold
    thick = max(3, int(round(width_fraction * h)))
    mask = np.zeros(hsv.shape[:2], np.uint8)
    if conf[list(TORSO)].all():
        cv2.fillPoly(mask, [np.round(pts[list(TORSO)]).astype(np.int32)], 1)
        hist = _histogram(hsv, mask)
        if hist is not None:
            emb[0], ok[0] = hist, True
    for r, (a, b) in enumerate(SEGMENTS, start=1):
        if not (conf[a] and conf[b]):
            continue
        mask[:] = 0
        cv2.line(
            mask, tuple(int(v) for v in np.round(pts[a])), tuple(int(v) for v in np.round(pts[b])), 1, thick
        )
        hist = _histogram(hsv, mask)
        if hist is not None:
            emb[r], ok[r] = hist, True
    return emb, ok


def appearance_similarity(
    emb_a: np.ndarray, mask_a: np.ndarray, emb_b: np.ndarray, mask_b: np.ndarray
) -> np.ndarray:
    """Similarity ``(A, B)`` in [0, 1]: mean Bhattacharyya coefficient over regions both people show
    (0 when they share none). Embeddings ``(N, R, D)``, masks ``(N, R)``."""
    a, b = np.asarray(emb_a, np.float64), np.asarray(emb_b, np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    bc = np.einsum("ard,brd->abr", np.sqrt(a), np.sqrt(b))
    both = np.asarray(mask_a)[:, None, :] & np.asarray(mask_b)[None, :, :]
    n = both.sum(-1)
    return np.where(n > 0, (bc * both).sum(-1) / np.maximum(n, 1), 0.0)


def clip_id_switches(gt_ids: list[np.ndarray], track_ids: list[np.ndarray]) -> int:
    """Identity switches: per frame, each known identity's track id is compared with the one it had
    when last seen; every change counts once (a first sighting and a missed frame do not)."""
    last: dict[int, int] = {}
    switches = 0
    for gts, trs in zip(gt_ids, track_ids):
        for g, t in zip(np.asarray(gts).tolist(), np.asarray(trs).tolist()):
            if g in last and last[g] != t:
                switches += 1
            last[g] = t
    return switches
