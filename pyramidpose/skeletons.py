"""Keypoint sets: names, left/right flip pairs, OKS sigmas, limbs and drawing colours.

One :class:`KeypointSet` per layout. Everything that depends on a layout (flip test, OKS, drawing,
mappings between layouts) reads it from here, so adding a dataset means adding one definition.
Pure Python and numpy: importing this module must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class KeypointSet:
    """A named layout of K keypoints.

    Attributes:
        name: short identifier (``"coco"``, ``"h36m"``...).
        keypoints: the K keypoint names in model output order.
        flip_pairs: index pairs (left, right) swapped when the image is mirrored.
        sigmas: per-keypoint OKS sigmas (COCO convention), or ``None`` where the dataset has none.
        limbs: index pairs drawn as skeleton edges.
        limb_colors: one RGB tuple per limb.
        keypoint_colors: one RGB tuple per keypoint.
        redundant_limbs: extra index pairs a bottom-up grouper links besides ``limbs`` (OpenPose's
            redundant part affinity fields: they still connect a person when a joint between is missing).
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None
    limbs: tuple[tuple[int, int], ...]
    limb_colors: tuple[tuple[int, int, int], ...] = field(default=())
    keypoint_colors: tuple[tuple[int, int, int], ...] = field(default=())
    redundant_limbs: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if len(set(self.keypoints)) != k:
            raise ValueError(f"{self.name}: duplicate keypoint names")
        for a, b in (*self.flip_pairs, *self.limbs, *self.redundant_limbs):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"{self.name}: pair ({a}, {b}) out of range for {k} keypoints")
        if self.sigmas is not None and len(self.sigmas) != k:
            raise ValueError(f"{self.name}: {len(self.sigmas)} sigmas for {k} keypoints")
        if not self.limb_colors:
            object.__setattr__(self, "limb_colors", _side_colors(self.keypoints, self.limbs))
        if not self.keypoint_colors:
            object.__setattr__(
                self, "keypoint_colors", tuple(_side_color(n) for n in self.keypoints)
            )

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def flip_index(self) -> np.ndarray:
        """Permutation ``p`` such that ``flipped[:, i] = original[:, p[i]]`` after mirroring."""
        perm = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def sigmas_array(self) -> np.ndarray:
        """OKS sigmas as a float64 array; raises if this set has none."""
        if self.sigmas is None:
            raise ValueError(f"keypoint set '{self.name}' has no OKS sigmas")
        return np.asarray(self.sigmas, dtype=np.float64)

    def index(self, name: str) -> int:
        """Index of a keypoint by name."""
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise KeyError(f"'{name}' is not a keypoint of '{self.name}'") from None


_LEFT, _RIGHT, _MID = (0, 200, 80), (230, 90, 30), (60, 130, 255)


def _side_color(name: str) -> tuple[int, int, int]:
    n = name.lower()
    if n.startswith(("left", "l_")) or "_left" in n:
        return _LEFT
    if n.startswith(("right", "r_")) or "_right" in n:
        return _RIGHT
    return _MID


def _side_colors(
    names: tuple[str, ...], limbs: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int, int], ...]:
    out = []
    for a, b in limbs:
        ca, cb = _side_color(names[a]), _side_color(names[b])
        out.append(ca if ca == cb else (ca if ca != _MID else cb))
    return tuple(out)


def _pairs_by_name(names: tuple[str, ...], left: str = "left", right: str = "right") -> tuple:
    """Flip pairs found by swapping 'left'/'right' in the names."""
    pairs = []
    for i, n in enumerate(names):
        if left in n:
            j = names.index(n.replace(left, right))
            pairs.append((i, j))
    return tuple(pairs)


COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

COCO = KeypointSet(
    name="coco",
    keypoints=COCO_KEYPOINTS,
    flip_pairs=_pairs_by_name(COCO_KEYPOINTS),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),  # fmt: skip
    # COCO's own skeleton (1-based in the annotation file), here 0-based.
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),  # fmt: skip
    # nose and eyes to shoulders, shoulders-wrists, hips-ankles, shoulders-opposite hips, elbows-hips
    redundant_limbs=(
        (0, 5), (0, 6), (1, 5), (2, 6), (5, 9), (6, 10), (11, 15), (12, 16), (5, 12), (6, 11), (7, 11),
        (8, 12),
    ),  # fmt: skip
)

H36M_KEYPOINTS = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip

H36M = KeypointSet(
    name="h36m",
    keypoints=H36M_KEYPOINTS,
    flip_pairs=_pairs_by_name(H36M_KEYPOINTS),
    sigmas=None,
    limbs=(
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
        (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
    ),  # fmt: skip
)

MPII_KEYPOINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
    "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
    "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip

MPII = KeypointSet(
    name="mpii",
    keypoints=MPII_KEYPOINTS,
    flip_pairs=_pairs_by_name(MPII_KEYPOINTS),
    # MPII is scored with PCKh; these are the OKS-style sigmas MMPose ships for it.
    sigmas=(
        0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026,
        0.026, 0.026, 0.062, 0.072, 0.179, 0.179, 0.072, 0.062,
    ),  # fmt: skip
    limbs=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (10, 11), (11, 12), (12, 7), (7, 13), (13, 14), (14, 15),
    ),  # fmt: skip
)

CROWDPOSE_KEYPOINTS = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head_top", "neck",
)  # fmt: skip

CROWDPOSE = KeypointSet(
    name="crowdpose",
    keypoints=CROWDPOSE_KEYPOINTS,
    flip_pairs=_pairs_by_name(CROWDPOSE_KEYPOINTS),
    # crowdposetools: [.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79] / 10
    sigmas=(
        0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079,
    ),  # fmt: skip
    limbs=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
        (6, 8), (8, 10), (7, 9), (9, 11),
    ),  # fmt: skip
)

AIC_KEYPOINTS = (
    "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "head_top", "neck",
)  # fmt: skip

AIC = KeypointSet(
    name="aic",
    keypoints=AIC_KEYPOINTS,
    flip_pairs=_pairs_by_name(AIC_KEYPOINTS),
    # AI Challenger 2017 keypoint_eval.py (its "delta" is 2 x these sigmas).
    sigmas=(
        0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642,
        0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173,
    ),  # fmt: skip
    limbs=(
        (12, 13), (13, 0), (0, 1), (1, 2), (13, 3), (3, 4), (4, 5), (0, 6), (3, 9), (6, 9),
        (6, 7), (7, 8), (9, 10), (10, 11),
    ),  # fmt: skip
)


def _hand_names(side: str) -> tuple[str, ...]:
    names = [f"{side}_hand_root"]
    for finger in ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger"):
        names += [f"{side}_{finger}{i}" for i in range(1, 5)]
    return tuple(names)


# The 68-point face layout (iBUG 300-W order) mirrored left <-> right, as (i, j) with i < j.
_FACE_FLIP = (
    *((i, 16 - i) for i in range(8)),  # jaw line 0..16 around the chin (8)
    *((17 + i, 26 - i) for i in range(5)),  # eyebrows
    (31, 35), (32, 34),  # nostrils (27..30 nose bridge and 33 are on the midline)
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),  # outer lips (51, 57 midline)
    (60, 64), (61, 63), (65, 67),  # inner lips (62, 66 midline)
)  # fmt: skip

WHOLEBODY_KEYPOINTS = (
    *COCO_KEYPOINTS,
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
    *(f"face-{i}" for i in range(68)),
    *_hand_names("left"),
    *_hand_names("right"),
)  # fmt: skip


def _wholebody_limbs() -> tuple[tuple[int, int], ...]:
    idx = {n: i for i, n in enumerate(WHOLEBODY_KEYPOINTS)}
    limbs = list(COCO.limbs)
    for side in ("left", "right"):
        for toe in ("big_toe", "small_toe", "heel"):
            limbs.append((idx[f"{side}_ankle"], idx[f"{side}_{toe}"]))
        root = idx[f"{side}_hand_root"]
        limbs.append((idx[f"{side}_wrist"], root))
        for finger in ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger"):
            chain = [root] + [idx[f"{side}_{finger}{i}"] for i in range(1, 5)]
            limbs += list(zip(chain[:-1], chain[1:]))
    return tuple(limbs)


_WB_FACE0 = 23  # index of face-0 in COCO-WholeBody

COCO_WHOLEBODY = KeypointSet(
    name="coco_wholebody",
    keypoints=WHOLEBODY_KEYPOINTS,
    flip_pairs=(
        *_pairs_by_name(WHOLEBODY_KEYPOINTS),
        *((_WB_FACE0 + a, _WB_FACE0 + b) for a, b in _FACE_FLIP),
    ),
    # COCO-WholeBody evaluation (myeval_wholebody.py / xtcocotools): body, feet, face, 2 x hand.
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
        0.087, 0.087, 0.089, 0.089,
        0.068, 0.066, 0.066, 0.092, 0.094, 0.094,
        0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037,
        0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013,
        0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009,
        0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008,
        0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008,
        0.008, 0.01, 0.008,
        *((0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026,
           0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031) * 2),
    ),  # fmt: skip
    limbs=_wholebody_limbs(),
)

BLAZEPOSE_KEYPOINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip

BLAZEPOSE = KeypointSet(
    name="blazepose",
    keypoints=BLAZEPOSE_KEYPOINTS,
    flip_pairs=_pairs_by_name(BLAZEPOSE_KEYPOINTS),
    sigmas=None,
    # MediaPipe's POSE_CONNECTIONS.
    limbs=(
        (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
        (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
        (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27),
        (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
    ),  # fmt: skip
)

def _load_set(file_name: str) -> KeypointSet:
    """A keypoint set stored as JSON in ``pyramidpose/assets/keypoints`` (layouts too long for code)."""
    import json
    from pathlib import Path

    d = json.loads((Path(__file__).parent / "assets" / "keypoints" / file_name).read_text())
    return KeypointSet(
        name=d["name"],
        keypoints=tuple(d["keypoints"]),
        flip_pairs=tuple((int(a), int(b)) for a, b in d["flip_pairs"]),
        sigmas=tuple(float(v) for v in d["sigmas"]),
        limbs=tuple((int(a), int(b)) for a, b in d["limbs"]),
    )


#: Sapiens' Goliath layout: 308 keypoints (body, feet, hands, 200+ face points incl. eyes, lips, teeth),
#: left/right swaps, skeleton links and OKS sigmas as in the facebookresearch/sapiens release.
GOLIATH = _load_set("goliath.json")

KEYPOINT_SETS: dict[str, KeypointSet] = {
    s.name: s for s in (COCO, H36M, MPII, CROWDPOSE, AIC, COCO_WHOLEBODY, BLAZEPOSE, GOLIATH)
}

_ALIASES = {
    "coco17": "coco", "coco_17": "coco", "h36m17": "h36m", "human36m": "h36m", "mpii16": "mpii",
    "wholebody": "coco_wholebody", "cocowholebody": "coco_wholebody", "coco_wholebody133": "coco_wholebody",
    "mediapipe": "blazepose", "blazepose33": "blazepose", "aic14": "aic", "crowdpose14": "crowdpose",
    "goliath308": "goliath", "sapiens": "goliath",
}  # fmt: skip


def get_keypoint_set(name: str) -> KeypointSet:
    """Look up a keypoint set by name (case-insensitive; '-' and '_' are the same)."""
    key = name.lower().replace("-", "_")
    key = _ALIASES.get(key, _ALIASES.get(key.replace("_", ""), key))
    if key not in KEYPOINT_SETS:
        raise KeyError(f"unknown keypoint set '{name}'; known: {', '.join(sorted(KEYPOINT_SETS))}")
    return KEYPOINT_SETS[key]


# ---------------------------------------------------------------------------------------------
# Mappings between layouts
# ---------------------------------------------------------------------------------------------

# Target keypoints that have no keypoint of the same name in the source, written as weighted means
# of source keypoints (approximations: e.g. H36M's pelvis is the hip midpoint of COCO).
_DERIVED: dict[tuple[str, str], dict[str, tuple[tuple[str, float], ...]]] = {
    ("coco", "h36m"): {
        "pelvis": (("left_hip", 0.5), ("right_hip", 0.5)),
        "thorax": (("left_shoulder", 0.5), ("right_shoulder", 0.5)),
        "spine": (("left_hip", 0.25), ("right_hip", 0.25), ("left_shoulder", 0.25), ("right_shoulder", 0.25)),
        "neck": (("nose", 1.0),),  # H36M's joint 9 ("neck/nose") sits at the nose in practice
        "head": (("left_eye", 0.5), ("right_eye", 0.5)),
    },
    ("mpii", "h36m"): {
        "spine": (("pelvis", 0.5), ("thorax", 0.5)),
        "neck": (("upper_neck", 1.0),),
        "head": (("head_top", 1.0),),
    },
    ("h36m", "coco"): {},
    ("crowdpose", "h36m"): {
        "pelvis": (("left_hip", 0.5), ("right_hip", 0.5)),
        "thorax": (("left_shoulder", 0.5), ("right_shoulder", 0.5)),
        "spine": (("left_hip", 0.25), ("right_hip", 0.25), ("left_shoulder", 0.25), ("right_shoulder", 0.25)),
        "head": (("head_top", 1.0),),
    },
}  # fmt: skip


@dataclass(frozen=True)
class KeypointMapping:
    """A linear map from one layout to another: ``dst = weights @ src`` for the ``valid`` targets.

    Attributes:
        src, dst: the two keypoint sets.
        weights: ``(K_dst, K_src)`` matrix; each valid row sums to 1.
        valid: ``(K_dst,)`` bool, False where the target has no counterpart in the source.
    """

    src: KeypointSet
    dst: KeypointSet
    weights: np.ndarray
    valid: np.ndarray

    def apply(
        self, keypoints: np.ndarray, scores: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map ``keypoints`` ``(..., K_src, D)`` (and scores ``(..., K_src)``) to the target layout.

        Returns ``(keypoints (..., K_dst, D), scores (..., K_dst))``. A derived target's score is the
        minimum of its sources' scores; targets without a counterpart get coordinates 0 and score 0.
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        out = np.einsum("ds,...sc->...dc", self.weights, kp)
        if scores is None:
            scores = np.ones(kp.shape[:-1])
        sc = np.asarray(scores, dtype=np.float64)
        used = self.weights > 0  # (K_dst, K_src)
        big = np.where(used, sc[..., None, :], np.inf)  # (..., K_dst, K_src)
        out_sc = np.where(self.valid, big.min(axis=-1), 0.0)
        out[..., ~self.valid, :] = 0.0
        return out, out_sc


def keypoint_mapping(src: str | KeypointSet, dst: str | KeypointSet) -> KeypointMapping:
    """The mapping from layout ``src`` to ``dst``: same-named keypoints, plus known derived joints."""
    s = src if isinstance(src, KeypointSet) else get_keypoint_set(src)
    d = dst if isinstance(dst, KeypointSet) else get_keypoint_set(dst)
    derived = _DERIVED.get((s.name, d.name), {})
    w = np.zeros((d.num_keypoints, s.num_keypoints))
    for i, name in enumerate(d.keypoints):
        if name in s.keypoints:
            w[i, s.index(name)] = 1.0
        elif name in derived:
            for src_name, weight in derived[name]:
                w[i, s.index(src_name)] += weight
    return KeypointMapping(src=s, dst=d, weights=w, valid=w.sum(axis=1) > 0)


def convert_keypoints(
    keypoints: np.ndarray, src: str | KeypointSet, dst: str | KeypointSet, scores: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shortcut for ``keypoint_mapping(src, dst).apply(keypoints, scores)``."""
    return keypoint_mapping(src, dst).apply(keypoints, scores)
