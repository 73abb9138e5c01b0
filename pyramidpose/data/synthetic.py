"""Synthetic people with exact labels: real CMU motion, rendered from random virtual cameras.

Every image is a pure function of ``(seed, split, index)``. A scene holds 1-5 people, each posed
by a frame of real motion capture (:mod:`pyramidpose.data.mocap` forward kinematics, one subject
set per split: train 01/02, test 03, so test motions and bodies are never seen in training),
turned to a random heading and placed along the ray of a random pixel at the depth that gives it
a log-uniform height of 40-260 px under one random virtual pinhole camera
(:func:`pyramidpose.geometry.cameras.random_virtual_camera`). Extra people are often placed next
to an earlier one, so people overlap. Bodies are articulated shapes: tapered capsules for limbs,
hands and neck, a convex torso, an elongated head with eyes/nose/ears marks, with clothing-like
variation (skin tone, shirt/trousers colours, short/long sleeves, shorts, stripes, shading).

Rendering is a painter's algorithm over the parts of all people (far to near by mean camera
depth) into a part-label map; the colour image is then composed from that map over a real
background: a crop of a COCO image that avoids every annotated person box (train: coco-mini
train2017, test: val2017), or a procedural one when no COCO images are given. Random occluders
(patches of the background, in front of people), blur, low resolution, JPEG and noise follow.

Labels (exact, from the geometry): COCO-17 keypoints (projection of the 3D joints) with
``v = 2`` when the label map at the keypoint's pixel is one of the joint's own parts (face points
must also face the camera), ``v = 1`` when it is covered (by another part, person or occluder)
and ``v = 0`` outside the image; the box of the person's whole rendered silhouette (clipped to
the image); its visible area in pixels (COCO ``area``); per-joint depth relative to the pelvis
(mm, camera frame) and the H36M-17 joints in the camera frame, pelvis-relative (mm), for 3D.

Example::

    gen = SyntheticPeople("train", seed=0, mocap_root="../shared/data/cmu-mocap")
    scene = gen[12]                # SyntheticScene: image [H, W, 3] uint8, keypoints [N, 17, 3] ...
    write_coco(gen, range(100), "synthetic_train.json")

``python benchmarks/bench_synthetic.py`` measures images per second.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.geometry.cameras import Camera, random_virtual_camera
from pyramidpose.skeletons import COCO

__all__ = [
    "SPLIT_SUBJECTS",
    "SceneConfig",
    "PersonSpec",
    "SyntheticScene",
    "MotionBank",
    "BackgroundBank",
    "SyntheticPeople",
    "render_scene",
    "write_coco",
    "coco_dict",
    "PARTS",
]

#: CMU subjects of each split: test motions and bodies are never seen in training.
SPLIT_SUBJECTS: dict[str, tuple[str, ...]] = {"train": ("01", "02"), "test": ("03",)}
_SPLIT_CODE = {"train": 1, "test": 2}

# H36M-17 indices (pyramidpose.skeletons.H36M order) used for the body shapes
_PELVIS, _SPINE, _THORAX, _NECK, _HEAD_TOP = 0, 7, 8, 9, 10

# COCO-17 indices
_NOSE, _LEYE, _REYE, _LEAR, _REAR = 0, 1, 2, 3, 4
_LSH, _RSH, _LEL, _REL, _LWR, _RWR, _LHIP, _RHIP, _LKN, _RKN, _LAN, _RAN = range(5, 17)

#: Body parts, drawn as one label each: name -> garment class (for colouring).
PARTS: tuple[str, ...] = (
    "torso", "neck", "head",
    "l_upper_arm", "r_upper_arm", "l_forearm", "r_forearm", "l_hand", "r_hand",
    "l_thigh", "r_thigh", "l_shin", "r_shin", "l_foot", "r_foot",
)  # fmt: skip
_P = {n: i for i, n in enumerate(PARTS)}
NUM_PARTS = len(PARTS)

#: The parts a COCO keypoint lies on (a keypoint is visible when its pixel shows one of them).
KEYPOINT_PARTS: tuple[tuple[int, ...], ...] = (
    (_P["head"],), (_P["head"],), (_P["head"],), (_P["head"],), (_P["head"],),
    (_P["torso"], _P["l_upper_arm"]), (_P["torso"], _P["r_upper_arm"]),
    (_P["l_upper_arm"], _P["l_forearm"]), (_P["r_upper_arm"], _P["r_forearm"]),
    (_P["l_forearm"], _P["l_hand"]), (_P["r_forearm"], _P["r_hand"]),
    (_P["torso"], _P["l_thigh"]), (_P["torso"], _P["r_thigh"]),
    (_P["l_thigh"], _P["l_shin"]), (_P["r_thigh"], _P["r_shin"]),
    (_P["l_shin"], _P["l_foot"]), (_P["r_shin"], _P["r_foot"]),
)  # fmt: skip

_OCCLUDER_BASE = 10_000  # label of occluder j is _OCCLUDER_BASE + j; person p part k: 1 + p * NUM_PARTS + k

_SKIN = np.array(
    [[255, 224, 196], [241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36], [92, 58, 30]], np.float32
)


@dataclass(frozen=True)
class SceneConfig:
    """Ranges of the random scenes (every range is sampled uniformly unless said otherwise)."""

    image_size: tuple[int, int] = (320, 320)
    """Scene (height, width) in pixels."""
    people: tuple[int, int] = (1, 5)
    """Number of people per image (inclusive range)."""
    height_px: tuple[float, float] = (40.0, 260.0)
    """Standing-equivalent person height in pixels, sampled log-uniformly."""
    near_prob: float = 0.5
    """Probability that a further person is placed beside an earlier one (overlaps)."""
    focal_px: tuple[float, float] = (250.0, 700.0)
    elevation_deg: tuple[float, float] = (-10.0, 35.0)
    occluders: tuple[int, int] = (0, 2)
    """Number of occluders per image (inclusive range), each over a random person."""
    blur_prob: float = 0.3
    lowres_prob: float = 0.15
    jpeg_prob: float = 0.3
    noise_prob: float = 0.5
    noise_std: float = 6.0
    stripes_prob: float = 0.4
    mocap_fps: float = 10.0
    """Motion frames are taken at this rate (neighbouring 120 fps frames are near duplicates)."""


@dataclass
class PersonSpec:
    """One person of a scene: world joints (m, Y up) in both layouts and the look parameters."""

    coco: np.ndarray  # [17, 3] world
    h36m: np.ndarray  # [17, 3] world
    colors: np.ndarray  # [NUM_PARTS, 3] float RGB
    width_scale: float = 1.0
    stripes: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # part -> (period, angle, amp)
    source: str = ""


@dataclass
class SyntheticScene:
    """One rendered image and its exact labels (N people)."""

    image: np.ndarray  # [H, W, 3] uint8 RGB
    keypoints: np.ndarray  # [N, 17, 3] float32 (x, y, v) COCO order, pixel centres at integers
    boxes: np.ndarray  # [N, 4] float32 COCO xywh of the whole silhouette, clipped to the image
    areas: np.ndarray  # [N] float32 visible silhouette pixels
    depth_mm: np.ndarray  # [N, 17] float32 COCO joints' camera depth minus the pelvis depth
    joints3d_mm: np.ndarray  # [N, 17, 3] float32 H36M joints, camera frame, pelvis-relative
    root_mm: np.ndarray  # [N, 3] float32 the pelvis in the camera frame
    height_px: np.ndarray  # [N] float32 silhouette height before clipping
    occlusion: np.ndarray  # [N] float32 fraction of the silhouette covered by others/occluders
    labels: np.ndarray  # [H, W] int32 part map (0 background)
    camera: Camera
    sources: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# motion and backgrounds


class MotionBank:
    """Poses of CMU trials (world joints, meters) in COCO-17 and H36M-17 layouts, with names."""

    _cache: dict[tuple, MotionBank] = {}

    def __init__(self, coco: np.ndarray, h36m: np.ndarray, names: list[str], subjects: tuple[str, ...]) -> None:
        if len(coco) == 0:
            raise DataError(f"no motion frames for CMU subjects {subjects}")
        self.coco, self.h36m, self.names, self.subjects = coco, h36m, names, subjects

    def __len__(self) -> int:
        return len(self.coco)

    @classmethod
    def from_files(cls, items: Sequence[tuple[str, str | Path, str | Path]], fps: float = 10.0) -> MotionBank:
        """Frames of ``(subject, asf, amc)`` trials resampled to ``fps`` (cached per process)."""
        from pyramidpose.data.mocap import (
            CMU_FPS,
            _cached_asf,
            forward_kinematics,
            parse_amc,
            resample,
            to_coco17,
            to_h36m17,
        )

        key = (tuple((s, str(a), str(m)) for s, a, m in items), float(fps))
        if key in cls._cache:
            return cls._cache[key]
        coco, h36m, names = [], [], []
        for _subject, asf, amc in items:
            pos, jn = forward_kinematics(_cached_asf(asf), parse_amc(amc))
            c, h = to_coco17(pos, jn), to_h36m17(pos, jn)
            if fps != CMU_FPS:
                c, h = resample(c, CMU_FPS, fps), resample(h, CMU_FPS, fps)
            coco.append(c.astype(np.float32))
            h36m.append(h.astype(np.float32))
            names += [f"{Path(amc).stem}:{k}" for k in range(len(c))]
        subjects = tuple(sorted({s for s, _, _ in items}))
        bank = cls(np.concatenate(coco), np.concatenate(h36m), names, subjects)
        cls._cache[key] = bank
        return bank

    @classmethod
    def for_split(
        cls, root: str | Path, split: str, fps: float = 10.0, cache_dir: str | Path | None = None
    ) -> MotionBank:
        """The trials of the split's subjects (:data:`SPLIT_SUBJECTS`) under a ``cmu-mocap`` root.

        With ``cache_dir`` the joints are also kept there as an ``.npz`` keyed by the files' names,
        sizes and times and ``fps`` (parsing subjects 01/02 takes ~15 s; reading the cache ~0.1 s).
        """
        import hashlib

        from pyramidpose.data.mocap import list_cmu_sequences

        if split not in SPLIT_SUBJECTS:
            raise DataError(f"unknown synthetic split {split!r}; use one of {sorted(SPLIT_SUBJECTS)}")
        items = list_cmu_sequences(root, SPLIT_SUBJECTS[split])
        if cache_dir is None:
            return cls.from_files(items, fps)
        sig = hashlib.sha256()
        for s, a, m in items:
            for f in (a, m):
                st = Path(f).stat()
                sig.update(f"{s}|{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        sig.update(f"{fps}".encode())
        path = Path(cache_dir) / f"motion_{split}_{sig.hexdigest()[:16]}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    return cls(z["coco"], z["h36m"], [str(n) for n in z["names"]], tuple(str(s) for s in z["subjects"]))
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache is rebuilt
        bank = cls.from_files(items, fps)
        from pyramidpose.utils.io import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, coco=bank.coco, h36m=bank.h36m, names=np.array(bank.names), subjects=np.array(bank.subjects))
        return bank


class BackgroundBank:
    """Person-free background crops from COCO images (every annotated person box avoided).

    Images are decoded lazily, downscaled to at most ``max_side`` pixels and kept (per process).
    With no images at all, :meth:`sample` draws a procedural background.
    """

    def __init__(self, items: Sequence[tuple[str, np.ndarray]] = (), max_side: int = 400) -> None:
        self.items = [(str(p), np.asarray(b, np.float32).reshape(-1, 4)) for p, b in items]
        self.max_side = max_side
        self._images: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}

    @classmethod
    def from_coco(cls, ann_file: str | Path, image_dir: str | Path, max_side: int = 400) -> BackgroundBank:
        """Every image of a COCO file with the boxes of all its person annotations (crowd too)."""
        from pyramidpose.utils.jsonio import read_json

        coco = read_json(ann_file, "background annotation file")
        if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
            raise DataError(f"{ann_file}: not a COCO annotation file (no 'images' list)")
        boxes: dict[int, list[list[float]]] = {}
        for a in coco.get("annotations", []):
            if int(a.get("category_id", 1)) == 1 and len(a.get("bbox", ())) == 4:
                boxes.setdefault(int(a["image_id"]), []).append([float(v) for v in a["bbox"]])
        items = [
            (str(Path(image_dir) / im["file_name"]), np.asarray(boxes.get(int(im["id"]), []), np.float32))
            for im in sorted(coco["images"], key=lambda im: int(im["id"]))
        ]
        return cls(items, max_side)

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        if i not in self._images:
            path, boxes = self.items[i]
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                self._images[i] = None
            else:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                s = min(1.0, self.max_side / max(img.shape[:2]))
                if s < 1.0:
                    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                self._images[i] = (img, boxes * s)
        return self._images[i]

    def sample(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A background of ``size`` (H, W): a person-free COCO crop, else a procedural one."""
        h, w = size
        for _ in range(12 if self.items else 0):
            loaded = self._load(int(rng.integers(len(self.items))))
            if loaded is None:
                continue
            img, boxes = loaded
            ih, iw = img.shape[:2]
            side = rng.uniform(0.3, 1.0) * min(ih, iw)
            ch, cw = (side, side * w / h) if w <= h else (side * h / w, side)
            if ch < 24 or cw < 24 or ch > ih or cw > iw:
                continue
            y0, x0 = rng.uniform(0, ih - ch), rng.uniform(0, iw - cw)
            if len(boxes) and _overlaps(boxes, (x0, y0, cw, ch)):
                continue
            m = np.array([[w / cw, 0, -x0 * w / cw], [0, h / ch, -y0 * h / ch]], np.float64)
            out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            return out[:, ::-1].copy() if rng.random() < 0.5 else out
        return _procedural_background(rng, size)


def _overlaps(boxes: np.ndarray, win: tuple[float, float, float, float]) -> bool:
    x, y, w, h = win
    return bool(
        np.any((boxes[:, 0] < x + w) & (boxes[:, 0] + boxes[:, 2] > x) & (boxes[:, 1] < y + h) & (boxes[:, 1] + boxes[:, 3] > y))
    )


def _procedural_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A smooth colour gradient with random rectangles and lines (no people by construction)."""
    h, w = size
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = np.ascontiguousarray(np.broadcast_to(c0 * (1 - t) + c1 * t, (h, w, 3)).astype(np.uint8))
    for _ in range(int(rng.integers(3, 9))):
        p = rng.uniform(0, 1, 4) * [w, h, w, h]
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), col, -1)
        else:
            cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), col, int(rng.integers(1, 6)))
    return img


# --------------------------------------------------------------------------------------------------
# people


def random_person(rng: np.random.Generator, bank: MotionBank, cfg: SceneConfig) -> PersonSpec:
    """A random frame of ``bank`` turned to a random heading, with random clothing."""
    i = int(rng.integers(len(bank)))
    coco, h36m = bank.coco[i].astype(np.float64), bank.h36m[i].astype(np.float64)
    pelvis = h36m[_PELVIS].copy()
    yaw = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    coco = (coco - pelvis) @ rot.T
    h36m = (h36m - pelvis) @ rot.T
    skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.85, 1.1)
    shirt, trousers = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    shoes = rng.uniform(0, 120, 3)
    sleeves = rng.choice(3, p=[0.4, 0.4, 0.2])  # 0 long, 1 short, 2 none
    long_trousers = rng.random() < 0.7
    colors = np.zeros((NUM_PARTS, 3), np.float32)
    colors[_P["torso"]] = shirt
    colors[[_P["neck"], _P["head"], _P["l_hand"], _P["r_hand"]]] = skin
    colors[[_P["l_upper_arm"], _P["r_upper_arm"]]] = shirt if sleeves < 2 else skin
    colors[[_P["l_forearm"], _P["r_forearm"]]] = shirt if sleeves == 0 else skin
    colors[[_P["l_thigh"], _P["r_thigh"]]] = trousers
    colors[[_P["l_shin"], _P["r_shin"]]] = trousers if long_trousers else skin
    colors[[_P["l_foot"], _P["r_foot"]]] = shoes
    colors *= rng.uniform(0.85, 1.15, (NUM_PARTS, 1))  # per-part shading
    shirt_parts = ["torso"] + (["l_upper_arm", "r_upper_arm"] if sleeves < 2 else []) + (
        ["l_forearm", "r_forearm"] if sleeves == 0 else []
    )
    trouser_parts = ["l_thigh", "r_thigh"] + (["l_shin", "r_shin"] if long_trousers else [])
    stripes: dict[int, tuple[float, float, float]] = {}
    for parts in (shirt_parts, trouser_parts):
        if rng.random() < cfg.stripes_prob:
            st = (float(rng.uniform(0.04, 0.15)), float(rng.uniform(0, math.pi)), float(rng.uniform(0.15, 0.45)))
            stripes.update({_P[n]: st for n in parts})
    return PersonSpec(
        coco=coco, h36m=h36m, colors=np.clip(colors, 0, 255), width_scale=float(rng.uniform(0.85, 1.3)),
        stripes=stripes, source=bank.names[i],
    )  # fmt: skip


# radii in meters (at the two ends) of the capsule parts: (part, start joint, end joint, r0, r1)
# joints: ("c", coco index) or ("h", h36m index)
_CAPSULES = (
    ("neck", ("h", _THORAX), ("h", _NECK), 0.05, 0.045),
    ("l_upper_arm", ("c", _LSH), ("c", _LEL), 0.05, 0.042),
    ("r_upper_arm", ("c", _RSH), ("c", _REL), 0.05, 0.042),
    ("l_forearm", ("c", _LEL), ("c", _LWR), 0.042, 0.032),
    ("r_forearm", ("c", _REL), ("c", _RWR), 0.042, 0.032),
    ("l_thigh", ("c", _LHIP), ("c", _LKN), 0.075, 0.055),
    ("r_thigh", ("c", _RHIP), ("c", _RKN), 0.075, 0.055),
    ("l_shin", ("c", _LKN), ("c", _LAN), 0.052, 0.04),
    ("r_shin", ("c", _RKN), ("c", _RAN), 0.052, 0.04),
)
_HEAD_RADIUS = 0.11  # m; the face points (<= 0.10 m from the head's middle) stay on the head


def _place(rng: np.random.Generator, person: PersonSpec, cam: Camera, height_px: float, uv: np.ndarray) -> PersonSpec:
    """Move ``person`` so its pelvis projects at ``uv`` at the depth giving ``height_px`` pixels."""
    f = float(cam.K[0, 0])
    depth = f * 1.7 / height_px  # a 1.7 m standing person would be height_px tall
    root = cam.back_project(np.asarray(uv, np.float64)[None], np.array([depth]))[0]
    return replace(person, coco=person.coco + root, h36m=person.h36m + root)


_UNIT_CIRCLES = {
    n: np.stack([np.cos(a), np.sin(a)], 1) for n in (12, 16) for a in [np.linspace(0, 2 * math.pi, n, endpoint=False)]
}


def _circle_pts(c: np.ndarray, r: float, n: int = 12) -> np.ndarray:
    return c + r * _UNIT_CIRCLES[n]


def _part_polygons(person: PersonSpec, cam: Camera) -> list[tuple[int, np.ndarray, float]]:
    """(part, image polygon [M, 2] float, mean camera depth) of every part of ``person``."""
    cc, ch = cam.world_to_camera(person.coco), cam.world_to_camera(person.h36m)
    z_ok = min(cc[:, 2].min(), ch[:, 2].min()) > 0.05
    if not z_ok:
        return []
    uc, uh = cam.project(person.coco), cam.project(person.h36m)
    f = float(cam.K[0, 0])
    k = person.width_scale

    def px(lay: str, j: int) -> tuple[np.ndarray, float]:
        return (uc[j], cc[j, 2]) if lay == "c" else (uh[j], ch[j, 2])

    out = []
    for name, a, b, r0, r1 in _CAPSULES:
        (pa, za), (pb, zb) = px(*a), px(*b)
        ra, rb = f * r0 * k / za, f * r1 * k / zb
        out.append((_P[name], np.concatenate([_circle_pts(pa, ra), _circle_pts(pb, rb)]), 0.5 * (za + zb)))
    # hands and feet: short capsules continuing the forearm / a blob at the ankle
    for name, e, w in (("l_hand", _LEL, _LWR), ("r_hand", _REL, _RWR)):
        d = person.coco[w] - person.coco[e]
        tip = person.coco[w] + 0.09 * d / max(1e-6, float(np.linalg.norm(d)))
        pt, zt = cam.project(tip[None])[0], float(cam.world_to_camera(tip[None])[0, 2])
        r = f * 0.035 * k
        out.append((_P[name], np.concatenate([_circle_pts(uc[w], r / cc[w, 2]), _circle_pts(pt, r / zt)]), 0.5 * (cc[w, 2] + zt)))
    for name, j in (("l_foot", _LAN), ("r_foot", _RAN)):
        out.append((_P[name], _circle_pts(uc[j], f * 0.05 * k / cc[j, 2]), float(cc[j, 2])))
    # torso: hull of discs at the shoulders, hips, spine and thorax
    torso = [
        _circle_pts(uc[_LSH], f * 0.06 * k / cc[_LSH, 2]), _circle_pts(uc[_RSH], f * 0.06 * k / cc[_RSH, 2]),
        _circle_pts(uc[_LHIP], f * 0.075 * k / cc[_LHIP, 2]), _circle_pts(uc[_RHIP], f * 0.075 * k / cc[_RHIP, 2]),
        _circle_pts(uh[_SPINE], f * 0.1 * k / ch[_SPINE, 2]), _circle_pts(uh[_THORAX], f * 0.09 * k / ch[_THORAX, 2]),
    ]  # fmt: skip
    tz = float(np.mean([cc[_LSH, 2], cc[_RSH, 2], cc[_LHIP, 2], cc[_RHIP, 2], ch[_SPINE, 2]]))
    out.append((_P["torso"], np.concatenate(torso), tz))
    # head: a capsule between 30 % and 70 % of neck -> top, radius _HEAD_RADIUS
    n3, t3 = person.h36m[_NECK], person.h36m[_HEAD_TOP]
    ends = np.stack([n3 + 0.3 * (t3 - n3), n3 + 0.7 * (t3 - n3)])
    pe, ze = cam.project(ends), cam.world_to_camera(ends)[:, 2]
    head = np.concatenate([_circle_pts(pe[0], f * _HEAD_RADIUS / ze[0], 16), _circle_pts(pe[1], f * _HEAD_RADIUS / ze[1], 16)])
    out.append((_P["head"], head, float(ze.mean())))
    return out


def _fill(img: np.ndarray, poly: np.ndarray, value: Any) -> None:
    """Fill the convex hull of ``poly`` (float pixels, 1/16 px precision)."""
    pts = np.round(poly * 16).astype(np.int32)
    hull = cv2.convexHull(pts)
    cv2.fillConvexPoly(img, hull, value, lineType=cv2.LINE_8, shift=4)


# --------------------------------------------------------------------------------------------------
# rendering


def render_scene(
    people: Sequence[PersonSpec],
    cam: Camera,
    background: np.ndarray,
    rng: np.random.Generator | None = None,
    cfg: SceneConfig | None = None,
    occluders: int = 0,
    effects: bool = True,
) -> SyntheticScene:
    """Render placed ``people`` seen by ``cam`` over ``background`` and label them exactly.

    ``occluders`` random occluders are drawn in front of random people; ``effects`` adds stripes,
    face marks, blur, low resolution, JPEG and noise (all from ``rng``). With ``effects=False`` and
    no occluders every part is one flat colour (``person.colors``), which the tests use.
    """
    cfg = cfg or SceneConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    h, w = background.shape[:2]
    labels = np.zeros((h, w), np.int32)
    polys: list[tuple[float, int, int, np.ndarray]] = []
    per_person: list[list[tuple[int, np.ndarray, float]]] = []
    for p, person in enumerate(people):
        parts = _part_polygons(person, cam)
        per_person.append(parts)
        polys += [(z, p, k, poly) for k, poly, z in parts]
    n = len(people)
    # occluders: polygons in front of random people, filled with a shifted patch of the background
    occ_polys = []
    for j in range(occluders):
        if not any(per_person):
            break
        p = int(rng.choice([i for i in range(n) if per_person[i]]))
        allp = np.concatenate([poly for _, poly, _ in per_person[p]])
        lo, hi = allp.min(0), allp.max(0)
        size = max(6.0, float((hi - lo).max()) * rng.uniform(0.15, 0.45))
        c = rng.uniform(lo, hi)
        m = int(rng.integers(4, 8))
        ang = np.sort(rng.uniform(0, 2 * math.pi, m))
        rad = size * rng.uniform(0.5, 1.0, m)
        occ_polys.append(c + np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1))
        zmin = min(z for _, _, z in per_person[p])
        polys.append((zmin - rng.uniform(0.2, 2.0), -1, j, occ_polys[-1]))
    # painter's algorithm: far to near
    polys.sort(key=lambda x: -x[0])
    for _z, p, k, poly in polys:
        _fill(labels, poly, _OCCLUDER_BASE + k if p < 0 else 1 + p * NUM_PARTS + k)
    # colours from the label map
    lut = np.zeros((1 + n * NUM_PARTS, 3), np.float32)
    for p, person in enumerate(people):
        lut[1 + p * NUM_PARTS : 1 + (p + 1) * NUM_PARTS] = person.colors
    body = (labels > 0) & (labels < _OCCLUDER_BASE)
    img = background.astype(np.float32)
    img[body] = lut[labels[body]]
    if effects:
        _stripes(img, labels, people)
    occ = labels >= _OCCLUDER_BASE
    if occ.any():
        shifted = np.roll(background, (int(rng.integers(h // 4, h - h // 4 + 1)), int(rng.integers(w // 4, w - w // 4 + 1))), (0, 1))
        tint = rng.uniform(0.6, 1.2, 3).astype(np.float32)
        img[occ] = np.clip(shifted[occ].astype(np.float32) * tint, 0, 255)
    # labels, visibility, boxes
    K = 17
    kps = np.zeros((n, K, 3), np.float32)
    boxes = np.zeros((n, 4), np.float32)
    areas = np.zeros(n, np.float32)
    heights = np.zeros(n, np.float32)
    occlusion = np.zeros(n, np.float32)
    depth = np.zeros((n, K), np.float32)
    j3d = np.zeros((n, K, 3), np.float32)
    root = np.zeros((n, 3), np.float32)
    counts = np.bincount(labels[body].ravel(), minlength=1 + n * NUM_PARTS)
    for p, person in enumerate(people):
        cc = cam.world_to_camera(person.coco)
        ch = cam.world_to_camera(person.h36m)
        uv = cam.project(person.coco)
        depth[p] = (cc[:, 2] - ch[_PELVIS, 2]) * 1000.0
        j3d[p] = (ch - ch[_PELVIS]) * 1000.0
        root[p] = ch[_PELVIS] * 1000.0
        if not per_person[p]:
            continue
        kps[p, :, :2] = uv
        allp = np.concatenate([poly for _, poly, _ in per_person[p]])
        lo, hi = allp.min(0), allp.max(0)
        heights[p] = hi[1] - lo[1]
        x0, y0 = max(0.0, lo[0]), max(0.0, lo[1])
        x1, y1 = min(w - 1.0, hi[0]), min(h - 1.0, hi[1])
        if x1 > x0 and y1 > y0:
            boxes[p] = (x0, y0, x1 - x0, y1 - y0)
        visible = float(counts[1 + p * NUM_PARTS : 1 + (p + 1) * NUM_PARTS].sum())
        areas[p] = visible
        silhouette = _silhouette_pixels(per_person[p], h, w)
        occlusion[p] = 1.0 - visible / silhouette if silhouette > 0 else 1.0
        head_z = float(np.mean(cam.world_to_camera(person.h36m[[_NECK, _HEAD_TOP]])[:, 2]))
        for k in range(K):
            x, y = float(uv[k, 0]), float(uv[k, 1])
            if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
                continue
            lab = int(labels[int(round(y)), int(round(x))])
            own = any(lab == 1 + p * NUM_PARTS + part for part in KEYPOINT_PARTS[k])
            if k <= _REAR and cc[k, 2] > head_z + 0.01:  # the face point is on the far side of the head
                own = False
            kps[p, k, 2] = 2.0 if own else 1.0
    if effects:
        _face_marks(img, kps, people, cam, labels)
        img = _degrade(img, rng, cfg)
    return SyntheticScene(
        image=np.clip(img, 0, 255).astype(np.uint8) if img.dtype != np.uint8 else img,
        keypoints=kps, boxes=boxes, areas=areas, depth_mm=depth, joints3d_mm=j3d, root_mm=root, height_px=heights,
        occlusion=occlusion, labels=labels, camera=cam, sources=[p.source for p in people],
    )  # fmt: skip


def _silhouette_pixels(parts: list[tuple[int, np.ndarray, float]], h: int, w: int) -> float:
    """Pixels of the person's whole silhouette inside the image (as if nothing covered it)."""
    allp = np.concatenate([poly for _, poly, _ in parts])
    lo = np.maximum(np.floor(allp.min(0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(allp.max(0)).astype(int) + 2, [w, h])
    if (hi <= lo).any():
        return 0.0
    mask = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    for _, poly, _ in parts:
        _fill(mask, poly - lo, 1)
    return float(mask.sum())


def _stripes(img: np.ndarray, labels: np.ndarray, people: Sequence[PersonSpec]) -> None:
    """Multiply striped garments by a square wave (period in meters scaled to the person's size)."""
    for p, person in enumerate(people):
        if not person.stripes:
            continue
        base = 1 + p * NUM_PARTS
        ys, xs = np.nonzero((labels >= base) & (labels < base + NUM_PARTS))
        if len(ys) == 0:
            continue
        part = labels[ys, xs] - base
        height = max(8.0, float(ys.max() - ys.min()))
        for k, (period, angle, amp) in person.stripes.items():
            sel = part == k
            if not sel.any():
                continue
            per_px = max(2.0, period / 1.7 * height)
            phase = (xs[sel] * math.cos(angle) + ys[sel] * math.sin(angle)) / per_px
            wave = np.where((phase % 1.0) < 0.5, 1.0 - amp, 1.0 + amp * 0.5).astype(np.float32)
            img[ys[sel], xs[sel]] *= wave[:, None]


def _face_marks(img: np.ndarray, kps: np.ndarray, people: Sequence[PersonSpec], cam: Camera, labels: np.ndarray) -> None:
    """Dark dots at visible eyes, a shaded nose and ears (cues for the facing direction)."""
    for p, person in enumerate(people):
        f = float(cam.K[0, 0])
        z = float(cam.world_to_camera(person.h36m[[_NECK]])[0, 2])
        r = f * 0.014 / z
        if r < 0.6:
            continue
        skin = person.colors[_P["head"]]
        for k, col in ((_LEYE, skin * 0.25), (_REYE, skin * 0.25), (_NOSE, skin * 0.75), (_LEAR, skin * 0.85), (_REAR, skin * 0.85)):
            if kps[p, k, 2] == 2:
                cv2.circle(img, (int(round(kps[p, k, 0] * 16)), int(round(kps[p, k, 1] * 16))), int(round(r * 16)),
                           tuple(float(c) for c in col), -1, cv2.LINE_AA, 4)  # fmt: skip


_NOISE: list[np.ndarray] = []


def _noise_field(min_size: int) -> np.ndarray:
    """A fixed field of standard normal noise (random crops of it are the per-image noise)."""
    if not _NOISE or _NOISE[0].shape[0] < min_size:
        size = max(768, min_size)
        _NOISE[:] = [np.random.default_rng(12345).standard_normal((size, size, 3), dtype=np.float32)]
    return _NOISE[0]


def _degrade(img: np.ndarray, rng: np.random.Generator, cfg: SceneConfig) -> np.ndarray:
    """Blur, low resolution, JPEG and Gaussian noise, each with its probability."""
    h, w = img.shape[:2]
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < cfg.blur_prob:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.6)))
    if rng.random() < cfg.lowres_prob:
        s = rng.uniform(0.35, 0.7)
        small = cv2.resize(out, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.jpeg_prob:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if rng.random() < cfg.noise_prob:
        field_ = _noise_field(max(h, w))
        y0, x0 = int(rng.integers(field_.shape[0] - h + 1)), int(rng.integers(field_.shape[1] - w + 1))
        noise = field_[y0 : y0 + h, x0 : x0 + w] * np.float32(rng.uniform(1.0, cfg.noise_std))
        noise += out
        out = np.clip(noise, 0, 255, out=noise).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------------
# the generator


class SyntheticPeople:
    """The deterministic scene generator of one split: ``gen[i]`` is scene ``i`` of ``(seed, split)``.

    Args:
        split: ``"train"`` (CMU subjects 01, 02) or ``"test"`` (subject 03).
        seed: the dataset seed; scenes are a pure function of ``(seed, split, index)``.
        mocap_root: the ``cmu-mocap`` directory (or give ``motion``).
        backgrounds: a :class:`BackgroundBank` (``None``: procedural backgrounds).
        config: :class:`SceneConfig`.
        motion: a ready :class:`MotionBank` (tests use small ones).
        length: the number of scenes ``len()`` reports.
    """

    def __init__(
        self,
        split: str = "train",
        seed: int = 0,
        mocap_root: str | Path | None = None,
        backgrounds: BackgroundBank | None = None,
        config: SceneConfig | None = None,
        motion: MotionBank | None = None,
        length: int = 1000,
    ) -> None:
        if split not in _SPLIT_CODE:
            raise DataError(f"unknown synthetic split {split!r}; use 'train' or 'test'")
        self.split, self.seed, self.length = split, int(seed), int(length)
        self.config = config or SceneConfig()
        self.backgrounds = backgrounds or BackgroundBank()
        if motion is None:
            if mocap_root is None:
                raise DataError("SyntheticPeople needs mocap_root (the cmu-mocap directory) or a MotionBank")
            motion = MotionBank.for_split(mocap_root, split, self.config.mocap_fps)
        self.motion = motion

    def __len__(self) -> int:
        return self.length

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _SPLIT_CODE[self.split], int(index)])

    def __getitem__(self, index: int) -> SyntheticScene:
        cfg = self.config
        rng = self.rng(index)
        h, w = cfg.image_size
        cam = random_virtual_camera(
            rng, np.array([0.0, 1.0, 0.0]), elevation_deg=cfg.elevation_deg, focal_px=cfg.focal_px,
            image_size=(w, h), principal_jitter_px=0.05 * min(h, w), target_jitter_m=0.0,
        )  # fmt: skip
        background = self.backgrounds.sample(rng, (h, w))
        people: list[PersonSpec] = []
        anchors: list[tuple[np.ndarray, float]] = []
        lo, hi = math.log(cfg.height_px[0]), math.log(cfg.height_px[1])
        for _ in range(int(rng.integers(cfg.people[0], cfg.people[1] + 1))):
            height = math.exp(rng.uniform(lo, hi))
            if anchors and rng.random() < cfg.near_prob:
                a_uv, a_h = anchors[int(rng.integers(len(anchors)))]
                uv = a_uv + rng.uniform(-0.45, 0.45, 2) * a_h
            else:
                uv = rng.uniform([0.05 * w, 0.2 * h], [0.95 * w, 0.8 * h])
            person = _place(rng, random_person(rng, self.motion, cfg), cam, height, uv)
            people.append(person)
            anchors.append((np.asarray(uv, np.float64), height))
        n_occ = int(rng.integers(cfg.occluders[0], cfg.occluders[1] + 1))
        return render_scene(people, cam, background, rng, cfg, occluders=n_occ)


# --------------------------------------------------------------------------------------------------
# COCO output


def coco_dict(scenes: Iterable[tuple[int, SyntheticScene]], file_pattern: str = "{:08d}.jpg") -> dict[str, Any]:
    """A COCO keypoint dict of ``(image_id, scene)`` pairs.

    Keypoints with ``v = 0`` are written as ``0, 0, 0`` (COCO's convention); people with no
    labelled keypoint or no box are left out. Extra per-person fields: ``depth_mm``,
    ``joints3d_mm``, ``root_mm``, ``height_px``, ``occlusion`` and ``source``; per image: ``camera_K``.
    """
    images, anns = [], []
    for image_id, sc in scenes:
        h, w = sc.image.shape[:2]
        images.append({"id": int(image_id), "file_name": file_pattern.format(image_id), "height": h, "width": w,
                       "camera_K": [round(float(v), 4) for v in sc.camera.K.reshape(-1)]})  # fmt: skip
        for p in range(len(sc.keypoints)):
            kp = sc.keypoints[p].astype(np.float64).copy()
            kp[kp[:, 2] == 0] = 0.0
            nk = int((kp[:, 2] > 0).sum())
            if nk == 0 or sc.boxes[p, 2] <= 0 or sc.boxes[p, 3] <= 0:
                continue
            anns.append({
                "id": len(anns) + 1, "image_id": int(image_id), "category_id": 1, "iscrowd": 0,
                "bbox": [round(float(v), 2) for v in sc.boxes[p]], "area": float(max(1.0, sc.areas[p])),
                "num_keypoints": nk, "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
                "depth_mm": [round(float(v), 1) for v in sc.depth_mm[p]],
                "joints3d_mm": [round(float(v), 1) for v in sc.joints3d_mm[p].reshape(-1)],
                "root_mm": [round(float(v), 1) for v in sc.root_mm[p]],
                "height_px": round(float(sc.height_px[p]), 2), "occlusion": round(float(sc.occlusion[p]), 4),
                "source": sc.sources[p],
            })  # fmt: skip
    return {
        "info": {"description": "pyramidpose synthetic people (CMU motion, exact labels)"},
        "images": images,
        "annotations": anns,
        "categories": [{
            "id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO.keypoints),
            "skeleton": [[a + 1, b + 1] for a, b in COCO.limbs],
        }],  # fmt: skip
    }


def write_coco(
    gen: SyntheticPeople,
    indices: Iterable[int],
    ann_path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the COCO keypoint JSON of scenes ``indices`` (image id = index), atomically.

    With ``image_dir`` the images are written there too (``{index:08d}.png``, lossless); without
    it only the labels are written (the images can always be re-rendered from the seed).
    """
    from tqdm import tqdm

    from pyramidpose.utils.io import atomic_path
    from pyramidpose.utils.jsonio import write_json

    def scenes() -> Iterable[tuple[int, SyntheticScene]]:
        for i in tqdm(list(indices), desc="synthetic", disable=not progress):
            sc = gen[i]
            if image_dir is not None:
                path = Path(image_dir) / f"{i:08d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp:
                    ok, buf = cv2.imencode(".png", cv2.cvtColor(sc.image, cv2.COLOR_RGB2BGR))
                    if not ok:
                        raise DataError(f"{path}: could not encode the image")
                    Path(tmp).write_bytes(buf.tobytes())
            yield i, sc

    doc = coco_dict(scenes(), "{:08d}.png")
    doc["info"].update(seed=gen.seed, split=gen.split, subjects=list(gen.motion.subjects))
    write_json(ann_path, doc)
    return doc
