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
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None
    limbs: tuple[tuple[int, int], ...]
    limb_colors: tuple[tuple[int, int, int], ...] = field(default=())
    keypoint_colors: tuple[tuple[int, int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if len(set(self.keypoints)) != k:
            raise ValueError(f"{self.name}: duplicate keypoint names")
        for a, b in (*self.flip_pairs, *self.limbs):
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

KEYPOINT_SETS: dict[str, KeypointSet] = {s.name: s for s in (COCO, H36M)}


def get_keypoint_set(name: str) -> KeypointSet:
    """Look up a keypoint set by name (case-insensitive)."""
    key = name.lower().replace("-", "_")
    if key not in KEYPOINT_SETS:
        raise KeyError(f"unknown keypoint set '{name}'; known: {', '.join(sorted(KEYPOINT_SETS))}")
    return KEYPOINT_SETS[key]
