"""Part affinity fields (OpenPose, Cao et al. TPAMI 2019): encode all people of an image, decode and group.

Targets, at the model's output stride ``s`` (input pixel ``x`` is heatmap pixel ``x / s``, the MSRA
geometry of :mod:`pyramidpose.codecs.heatmap`):

* one Gaussian heatmap per keypoint type, the maximum over people;
* one 2-channel field per limb ``(a, b)`` of the skeleton (its ``limbs`` then its
  ``redundant_limbs``, OpenPose's extra connections that keep a person whole when a joint between is
  missing): the unit vector from ``a`` to ``b`` on the
  pixels within ``limb_width`` heatmap pixels of the segment, averaged where people overlap.

Decoding: peaks per type (3x3 non-maximum suppression above ``peak_threshold``, sub-pixel by a
log-parabola through the neighbours), candidate limbs scored by the line integral of the field
(``num_samples`` points; the fraction above ``paf_threshold`` and a distance prior), greedy bipartite
matching per limb in the skeleton's tree order (:func:`limb_order`: breadth-first from the best
connected keypoint, the edges closing cycles after), assembly into people (a matched pair joins the
person holding one of its ends, merges two partial people with disjoint keypoints, or starts a
person), and a person score. Everything is numpy; the skeleton comes from
:mod:`pyramidpose.skeletons`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter

from pyramidpose.skeletons import get_keypoint_set


def limb_order(limbs: tuple[tuple[int, int], ...], num_keypoints: int) -> list[int]:
    """Indices of ``limbs`` in tree order.

    Breadth-first from the keypoint with the most limbs (lowest index on ties): the edges that reach a
    new keypoint form a spanning tree, listed in visiting order; the edges closing cycles follow.
    """
    adj: list[list[tuple[int, int]]] = [[] for _ in range(num_keypoints)]
    for i, (a, b) in enumerate(limbs):
        adj[a].append((b, i))
        adj[b].append((a, i))
    degree = np.array([len(x) for x in adj])
    seen = np.zeros(num_keypoints, bool)
    order: list[int] = []
    used = np.zeros(len(limbs), bool)
    for root in np.argsort(-degree, kind="stable"):  # every connected component
        if seen[root] or degree[root] == 0:
            continue
        seen[root] = True
        queue = deque([int(root)])
        while queue:
            u = queue.popleft()
            for v, i in adj[u]:
                if not seen[v]:
                    seen[v] = True
                    used[i] = True
                    order.append(i)
                    queue.append(v)
    return order + [i for i in range(len(limbs)) if not used[i]]


@dataclass(frozen=True)
class PafCodec:
    """Heatmaps + part affinity fields for all people; decode into grouped people.

    Attributes:
        heatmap_size: ``(H, W)`` of the output maps.
        stride: input pixels per output pixel.
        keypoint_set: layout name in :mod:`pyramidpose.skeletons` (keypoints and limbs).
        sigma: Gaussian standard deviation in output pixels.
        limb_width: half-width of a limb's field in output pixels.
        peak_threshold: heatmap peaks below this are ignored.
        paf_threshold: a sampled field value must exceed this to count along a limb.
        num_samples: points sampled on each candidate limb.
        min_fraction: fraction of samples above ``paf_threshold`` for a valid candidate.
        min_parts: people with fewer keypoints are dropped; with 1, a peak no limb joined is a person
            of its own (a person of whom only one keypoint is labelled or seen).
    """

    heatmap_size: tuple[int, int]
    stride: int = 4
    keypoint_set: str = "coco"
    sigma: float = 2.0
    limb_width: float = 1.0
    peak_threshold: float = 0.1
    paf_threshold: float = 0.05
    num_samples: int = 10
    min_fraction: float = 0.8
    min_parts: int = 1

    @property
    def limbs(self) -> tuple[tuple[int, int], ...]:
        """The skeleton's limbs, then its redundant ones: one field each."""
        kset = get_keypoint_set(self.keypoint_set)
        return kset.limbs + kset.redundant_limbs

    @property
    def num_keypoints(self) -> int:
        return get_keypoint_set(self.keypoint_set).num_keypoints

    @property
    def num_paf_channels(self) -> int:
        return 2 * len(self.limbs)

    # ------------------------------------------------------------------------------------------
    # Encoding
    # ------------------------------------------------------------------------------------------

    def encode(self, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets for all people of one image.

        Args:
            keypoints: ``(N, K, 3)`` input-pixel ``x, y`` and visibility (> 0 = labelled).

        Returns:
            ``heatmaps (K, H, W)`` and ``pafs (2L, H, W)`` float32; channel ``2l`` is the x and ``2l+1``
            the y component of limb ``l`` (in ``self.limbs`` order).
        """
        h, w = self.heatmap_size
        kp = np.asarray(keypoints, np.float64).reshape(-1, self.num_keypoints, 3)
        mu = kp[..., :2] / self.stride
        vis = kp[..., 2] > 0
        ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
        heat = np.zeros((self.num_keypoints, h, w), np.float64)
        if len(kp):
            gx = np.exp(-((xs - mu[..., 0:1]) ** 2) / (2 * self.sigma**2)) * vis[..., None]  # (N, K, W)
            gy = np.exp(-((ys - mu[..., 1:2]) ** 2) / (2 * self.sigma**2))  # (N, K, H)
            heat = np.einsum("nkh,nkw->nkhw", gy, gx).max(axis=0)
        pafs = np.zeros((len(self.limbs), 2, h, w), np.float64)
        for li, (a, b) in enumerate(self.limbs):
            ok = vis[:, a] & vis[:, b]
            if not ok.any():
                continue
            pa, pb = mu[ok, a], mu[ok, b]  # (M, 2)
            d = pb - pa
            length = np.linalg.norm(d, axis=1)
            keep = length > 1e-6
            if not keep.any():
                continue
            pa, d, length = pa[keep], d[keep], length[keep]
            u = d / length[:, None]
            rx = xs[None, None, :] - pa[:, 0, None, None]  # (M, 1, W)
            ry = ys[None, :, None] - pa[:, 1, None, None]  # (M, H, 1)
            along = rx * u[:, 0, None, None] + ry * u[:, 1, None, None]
            across = np.abs(rx * u[:, 1, None, None] - ry * u[:, 0, None, None])
            on = (along >= -self.limb_width) & (along <= length[:, None, None] + self.limb_width)
            on &= across <= self.limb_width  # (M, H, W)
            count = on.sum(0)
            vec = np.einsum("mhw,mc->chw", on.astype(np.float64), u)
            pafs[li] = np.divide(vec, count, out=np.zeros_like(vec), where=count > 0)
        return heat.astype(np.float32), pafs.reshape(-1, h, w).astype(np.float32)

    # ------------------------------------------------------------------------------------------
    # Decoding
    # ------------------------------------------------------------------------------------------

    def find_peaks(self, heatmaps: np.ndarray) -> list[np.ndarray]:
        """Per keypoint type, an ``(n, 3)`` array of peaks ``x, y, value`` in output pixels.

        A peak is a local maximum of its 3x3 neighbourhood above ``peak_threshold`` (of equal
        neighbouring maxima, the first in raster order); its position is refined per axis by the parabola through the log of the three values (exact for a Gaussian).
        """
        hm = np.asarray(heatmaps, np.float32)
        k, h, w = hm.shape
        local = maximum_filter(hm, size=(1, 3, 3), mode="constant", cval=-np.inf)
        top = (hm == local) & (hm > self.peak_threshold)
        # a flat top (a keypoint half-way between pixels) is one peak: keep its first pixel in raster order
        keep = top.copy()
        pad = np.pad(top, ((0, 0), (1, 1), (1, 1)))
        padv = np.pad(hm, ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)
        for dy, dx in ((0, -1), (-1, -1), (-1, 0), (-1, 1)):
            before = pad[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            keep &= ~(before & (padv[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] == hm))
        kk, yy, xx = np.nonzero(keep)
        logh = np.log(np.maximum(hm.astype(np.float64), 1e-10))

        def offset(lo: np.ndarray, c: np.ndarray, hi: np.ndarray) -> np.ndarray:
            den = lo - 2 * c + hi
            off = np.divide(0.5 * (lo - hi), den, out=np.zeros_like(c), where=den < -1e-12)
            return np.clip(off, -0.5, 0.5)

        c = logh[kk, yy, xx]
        ox = offset(logh[kk, yy, np.maximum(xx - 1, 0)], c, logh[kk, yy, np.minimum(xx + 1, w - 1)])
        oy = offset(logh[kk, np.maximum(yy - 1, 0), xx], c, logh[kk, np.minimum(yy + 1, h - 1), xx])
        ox = np.where((xx > 0) & (xx < w - 1), ox, 0.0)
        oy = np.where((yy > 0) & (yy < h - 1), oy, 0.0)
        pts = np.stack([xx + ox, yy + oy, hm[kk, yy, xx]], axis=1)
        return [pts[kk == j] for j in range(k)]

    def score_limb(self, pafs: np.ndarray, limb: int, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        """Line-integral scores ``(na, nb)`` of every candidate pair; ``-inf`` where not a valid limb.

        The field of ``limb`` is sampled at ``num_samples`` points from each ``a`` to each ``b`` and
        projected on the pair's direction. Valid when at least ``min_fraction`` of the samples exceed
        ``paf_threshold`` and the mean plus the distance prior ``min(0.5 H / length - 1, 0)`` is positive.
        """
        h, w = pafs.shape[-2:]
        fx, fy = pafs[2 * limb], pafs[2 * limb + 1]
        d = pb[None, :, :2] - pa[:, None, :2]  # (na, nb, 2)
        length = np.linalg.norm(d, axis=-1)
        u = d / np.maximum(length, 1e-6)[..., None]
        t = np.linspace(0.0, 1.0, self.num_samples)
        pts = pa[:, None, None, :2] + t[None, None, :, None] * d[:, :, None, :]  # (na, nb, S, 2)
        xi = np.clip(np.rint(pts[..., 0]).astype(np.int64), 0, w - 1)
        yi = np.clip(np.rint(pts[..., 1]).astype(np.int64), 0, h - 1)
        dots = fx[yi, xi] * u[..., None, 0] + fy[yi, xi] * u[..., None, 1]  # (na, nb, S)
        prior = np.minimum(0.5 * h / np.maximum(length, 1e-6) - 1.0, 0.0)
        score = dots.mean(-1) + prior
        valid = ((dots > self.paf_threshold).mean(-1) >= self.min_fraction) & (score > 0) & (length > 1e-6)
        return np.where(valid, score, -np.inf)

    def decode(self, heatmaps: np.ndarray, pafs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group peaks into people.

        Args:
            heatmaps: ``(K, H, W)``; pafs: ``(2L, H, W)`` (as :meth:`encode` lays them out).

        Returns:
            ``keypoints (P, K, 3)`` in input pixels with the peak value as score (0 for missing
            keypoints, placed at 0, 0) and ``scores (P,)``, highest first. A person's score is the sum
            of its peak values and limb scores over ``K + L`` (so a complete, confident person scores
            highest).
        """
        hm = np.asarray(heatmaps, np.float32)
        pf = np.asarray(pafs, np.float32)
        k = self.num_keypoints
        if hm.shape[0] != k or pf.shape[0] != self.num_paf_channels or hm.shape[-2:] != pf.shape[-2:]:
            raise ValueError(
                f"expected heatmaps ({k}, H, W) and pafs ({self.num_paf_channels}, H, W), got {hm.shape}, {pf.shape}"
            )
        peaks = self.find_peaks(hm)
        offsets = np.cumsum([0] + [len(p) for p in peaks])
        allpeaks = np.concatenate(peaks) if offsets[-1] else np.zeros((0, 3))
        order = limb_order(self.limbs, k)
        people = np.full((0, k), -1, np.int64)  # global peak index per type
        limb_sum = np.zeros(0)
        for li in order:
            a, b = self.limbs[li]
            pa, pb = peaks[a], peaks[b]
            if len(pa) == 0 or len(pb) == 0:
                continue
            s = self.score_limb(pf, li, pa, pb)
            for ia, ib, sc in _greedy_match(s):
                ga, gb = offsets[a] + ia, offsets[b] + ib
                has = np.flatnonzero((people[:, a] == ga) | (people[:, b] == gb))
                if len(has) == 1:
                    p = has[0]
                    if people[p, a] in (-1, ga) and people[p, b] in (-1, gb):
                        people[p, a], people[p, b] = ga, gb
                        limb_sum[p] += sc
                elif len(has) == 2:
                    p, q = has
                    if not ((people[p] >= 0) & (people[q] >= 0)).any():  # disjoint parts: one person
                        people[p] = np.maximum(people[p], people[q])
                        limb_sum[p] += limb_sum[q] + sc
                        people = np.delete(people, q, axis=0)
                        limb_sum = np.delete(limb_sum, q)
                elif not has.size:
                    row = np.full((1, k), -1, np.int64)
                    row[0, a], row[0, b] = ga, gb
                    people = np.concatenate([people, row])
                    limb_sum = np.append(limb_sum, sc)
        if self.min_parts <= 1:  # peaks no limb joined: people of one keypoint
            alone = np.ones(len(allpeaks), bool)
            alone[people[people >= 0]] = False
            for g in np.flatnonzero(alone):
                row = np.full((1, k), -1, np.int64)
                row[0, np.searchsorted(offsets, g, side="right") - 1] = g
                people = np.concatenate([people, row])
                limb_sum = np.append(limb_sum, 0.0)
        present = people >= 0
        count = present.sum(1)
        keep = count >= self.min_parts
        people, present, limb_sum = people[keep], present[keep], limb_sum[keep]
        out = np.zeros((len(people), k, 3))
        if len(people):
            got = allpeaks[np.maximum(people, 0)]  # (P, K, 3)
            out = np.where(present[..., None], got, 0.0)
            out[..., :2] = np.where(present[..., None], out[..., :2] * self.stride, 0.0)
        scores = (out[..., 2].sum(1) + limb_sum) / (k + len(self.limbs))
        rank = np.argsort(-scores, kind="stable")
        return out[rank].astype(np.float32), scores[rank]


def _greedy_match(scores: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy bipartite matching: pairs by decreasing score, each row and column used once."""
    ia, ib = np.nonzero(np.isfinite(scores))
    if len(ia) == 0:
        return []
    vals = scores[ia, ib]
    rank = np.argsort(-vals, kind="stable")
    used_a = np.zeros(scores.shape[0], bool)
    used_b = np.zeros(scores.shape[1], bool)
    out = []
    for r in rank:
        a, b = ia[r], ib[r]
        if not used_a[a] and not used_b[b]:
            used_a[a] = used_b[b] = True
            out.append((int(a), int(b), float(vals[r])))
    return out


def roundtrip_results(
    coco: dict, longer_side: int = 512, image_ids: list[int] | None = None, **codec_args: object
) -> list[dict]:
    """Encode the ground truth of a COCO keypoint dict, decode and group it: COCO results.

    Each image is scaled so its longer side is ``longer_side`` input pixels (as a bottom-up model sees
    it); the maps are ``ceil(size / stride)``. ``codec_args`` go to :class:`PafCodec`. Scoring these
    results against ``coco`` checks the grouping (and the resolution) independently of any network.
    """
    anns: dict[int, list[np.ndarray]] = {}
    for ann in coco.get("annotations", []):
        kp = ann.get("keypoints")
        if ann.get("iscrowd", 0) or not kp or not any(v > 0 for v in kp[2::3]):
            continue
        anns.setdefault(int(ann["image_id"]), []).append(np.asarray(kp, np.float64).reshape(-1, 3))
    results = []
    for im in coco["images"]:
        iid = int(im["id"])
        if (image_ids is not None and iid not in image_ids) or iid not in anns:
            continue
        f = longer_side / max(im["width"], im["height"])
        stride = int(codec_args.get("stride", 4))  # type: ignore[call-overload]
        size = (int(np.ceil(im["height"] * f / stride)), int(np.ceil(im["width"] * f / stride)))
        codec = PafCodec(heatmap_size=size, **codec_args)  # type: ignore[arg-type]
        kp = np.stack(anns[iid])
        kp[..., :2] *= f
        people, scores = codec.decode(*codec.encode(kp))
        people[..., :2] /= f
        for p, s in zip(people, scores):
            results.append(
                {"image_id": iid, "category_id": 1, "keypoints": p.reshape(-1).tolist(), "score": float(s)}
            )
    return results
