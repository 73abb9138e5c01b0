"""Readers (and writers) for 3D pose data sets users already have.

Human3.6M in VideoPose3D's npz layout (``data/prepare_data_h36m.py`` of VideoPose3D):

- ``data_3d_h36m.npz``: one entry ``positions_3d``, a pickled dict
  ``{subject: {action: float32 [F, 32, 3]}}`` (world coordinates, meters, 32 mocap joints).
  :func:`load_h36m_3d` returns ``[F, 17, 3]`` in :data:`pyramidpose.skeletons.H36M` order (the
  usual 17 of the 32, see :data:`H36M32_TO_17`) unless ``keep_all_joints``.
- ``data_2d_h36m_<name>.npz`` (``gt``, ``cpn_ft_h36m_dbb``, ``detectron_ft_h36m`` ...): entries
  ``positions_2d`` = ``{subject: {action: [camera0 [F, J, 2], camera1, ...]}}`` in pixels and
  ``metadata`` = ``{"layout_name": ..., "num_joints": J, "keypoints_symmetry": [left, right]}``.

3DPW sequence pickles (``sequenceFiles/<split>/<sequence>.pkl``, written by Python 2; read with
``latin1``): a dict with ``sequence``, ``genders``, ``betas``, ``poses``, ``trans``,
``jointPositions`` (per actor ``[N, 72]`` = 24 SMPL joints x 3, world, meters),
``poses2d`` (per actor ``[N, 3, 18]``: x, y, confidence of 18 OpenPose/COCO-18 joints),
``img_frame_ids`` ``[N]``, ``cam_poses`` ``[N, 4, 4]`` (world -> camera), ``cam_intrinsics``
``[3, 3]``, ``campose_valid`` (per actor ``[N]``). Pickles can run code when loaded:
both readers use :mod:`pyramidpose.utils.npyio` (a restricted unpickler that only rebuilds numpy
arrays and plain Python containers; declared sizes checked against the file), and raise
:class:`DataError` for anything else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.utils.npyio import PICKLE_ERRORS, load_npz, restricted_loads

__all__ = [
    "H36M32_TO_17",
    "OPENPOSE18_TO_COCO17",
    "load_h36m_3d",
    "load_h36m_2d",
    "save_h36m_3d",
    "save_h36m_2d",
    "ThreeDPWSequence",
    "load_3dpw_sequence",
]

# Indices of the 17 kept joints among Human3.6M's 32 (pelvis, R hip/knee/foot, L hip/knee/foot,
# spine, thorax, neck/nose, head, L shoulder/elbow/wrist, R shoulder/elbow/wrist).
H36M32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

# OpenPose-18 (3DPW poses2d): nose, neck, RSho, RElb, RWri, LSho, LElb, LWri, RHip, RKnee, RAnk,
# LHip, LKnee, LAnk, REye, LEye, REar, LEar -> COCO-17 order.
OPENPOSE18_TO_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)


def _load_npz(path: str | os.PathLike[str], keys: tuple[str, ...]) -> dict[str, Any]:
    """The members ``keys`` of a VideoPose3D npz; 0-d object arrays (pickled dicts) unwrapped."""
    try:
        arrays = load_npz(path, keys, allow_objects=True)
    except DataError as e:
        if "missing entr" in str(e):
            raise DataError(f"{e} Is this a VideoPose3D Human3.6M file?") from None
        raise
    return {k: v.item() if v.dtype == object and v.shape == () else v for k, v in arrays.items()}


def load_h36m_3d(path: str | os.PathLike[str], keep_all_joints: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Read ``data_3d_h36m.npz`` -> ``{subject: {action: [F, 17, 3]}}`` (meters, world frame)."""
    data = _load_npz(path, ("positions_3d",))["positions_3d"]
    if not isinstance(data, dict):
        raise DataError(f"{path}: positions_3d should be a dict {{subject: {{action: array}}}}, got {type(data).__name__}")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject, actions in data.items():
        if not isinstance(actions, dict):
            raise DataError(f"{path}: positions_3d[{subject!r}] should be a dict of actions")
        out[subject] = {}
        for action, arr in actions.items():
            a = np.asarray(arr, dtype=np.float32)
            if a.ndim != 3 or a.shape[-1] != 3:
                raise DataError(f"{path}: {subject}/{action} has shape {a.shape}, expected [frames, joints, 3]")
            if not keep_all_joints:
                if a.shape[1] == 32:
                    a = a[:, list(H36M32_TO_17)]
                elif a.shape[1] != 17:
                    raise DataError(f"{path}: {subject}/{action} has {a.shape[1]} joints; expected 32 or 17")
            out[subject][action] = a
    return out


def load_h36m_2d(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """Read ``data_2d_h36m_*.npz`` -> (``{subject: {action: [per camera [F, J, 2]]}}``, metadata)."""
    d = _load_npz(path, ("positions_2d", "metadata"))
    pos, meta = d["positions_2d"], d["metadata"]
    if not isinstance(pos, dict) or not isinstance(meta, dict):
        raise DataError(f"{path}: positions_2d and metadata should both be dicts")
    J = meta.get("num_joints")
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, actions in pos.items():
        out[subject] = {}
        for action, cams in actions.items():
            arrs = []
            for ci, arr in enumerate(cams):
                a = np.asarray(arr, dtype=np.float32)
                if a.ndim != 3 or a.shape[-1] < 2 or (J is not None and a.shape[1] != J):
                    raise DataError(f"{path}: {subject}/{action} camera {ci} has shape {a.shape}, "
                                    f"expected [frames, {J}, 2]")  # fmt: skip
                arrs.append(a[..., :2])
            out[subject][action] = arrs
    return out, dict(meta)


def save_h36m_3d(path: str | os.PathLike[str], positions: dict[str, dict[str, np.ndarray]]) -> None:
    """Write ``{subject: {action: [F, J, 3]}}`` in the ``data_3d_h36m.npz`` layout (atomically)."""
    from pyramidpose.utils.io import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, positions_3d=np.array(positions, dtype=object))


def save_h36m_2d(path: str | os.PathLike[str], positions: dict[str, dict[str, list[np.ndarray]]],
                 layout_name: str = "h36m", keypoints_symmetry: tuple | None = None) -> None:
    """Write per-camera 2D keypoints in the ``data_2d_h36m_*.npz`` layout (atomically)."""
    from pyramidpose.utils.io import atomic_path

    first = next(a for acts in positions.values() for cams in acts.values() for a in cams)
    meta = {"layout_name": layout_name, "num_joints": int(np.asarray(first).shape[1]),
            "keypoints_symmetry": list(keypoints_symmetry or ([4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]))}  # fmt: skip
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, positions_2d=np.array(positions, dtype=object), metadata=meta)


@dataclass
class ThreeDPWSequence:
    """One 3DPW sequence; per-actor lists (one entry per actor)."""

    name: str
    joints3d: list[np.ndarray]  # [N, 24, 3] world, meters (SMPL joints)
    poses2d: list[np.ndarray]  # [N, 18, 3] x, y, confidence (OpenPose-18)
    cam_poses: np.ndarray  # [N, 4, 4] world -> camera
    cam_intrinsics: np.ndarray  # [3, 3]
    img_frame_ids: np.ndarray  # [N]
    campose_valid: list[np.ndarray]  # [N] bool
    genders: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)

    def joints3d_camera(self, actor: int = 0) -> np.ndarray:
        """Actor's SMPL joints in each frame's camera coordinates ``[N, 24, 3]``."""
        X = self.joints3d[actor]
        R, t = self.cam_poses[:, :3, :3], self.cam_poses[:, :3, 3]
        return np.einsum("nij,nkj->nki", R, X) + t[:, None]

    def coco17_2d(self, actor: int = 0) -> np.ndarray:
        """Actor's 2D detections in COCO-17 order ``[N, 17, 3]`` (x, y, confidence)."""
        return self.poses2d[actor][:, list(OPENPOSE18_TO_COCO17)]


def load_3dpw_sequence(path: str | os.PathLike[str]) -> ThreeDPWSequence:
    """Read a 3DPW ``.pkl`` sequence file (restricted unpickling, see module doc)."""
    path = Path(path)
    try:
        raw = restricted_loads(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a 3DPW .pkl file.") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}).") from None
    except PICKLE_ERRORS as e:
        raise DataError(f"{path}: not a readable 3DPW sequence pickle ({e}).") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a dict, got {type(raw).__name__}")
    need = ("jointPositions", "cam_poses", "cam_intrinsics", "img_frame_ids")
    missing = [k for k in need if k not in raw]
    p2d_key = "poses2d" if "poses2d" in raw else ("poses2D" if "poses2D" in raw else None)
    if p2d_key is None:
        missing.append("poses2d")
    if missing:
        raise DataError(f"{path}: missing 3DPW key(s) {missing}; found {sorted(raw)}")
    try:
        joints = [np.asarray(j, dtype=np.float64).reshape(len(j), 24, 3) for j in raw["jointPositions"]]
        poses2d = []
        for p in raw[p2d_key]:
            a = np.asarray(p, dtype=np.float64)
            if a.ndim == 3 and a.shape[1] == 3 and a.shape[2] == 18:
                a = a.transpose(0, 2, 1)
            if a.ndim != 3 or a.shape[1:] != (18, 3):
                raise ValueError(f"poses2d actor array of shape {a.shape}, expected [N, 3, 18]")
            poses2d.append(a)
        cam_poses = np.asarray(raw["cam_poses"], dtype=np.float64).reshape(-1, 4, 4)
        K = np.asarray(raw["cam_intrinsics"], dtype=np.float64).reshape(3, 3)
    except (ValueError, TypeError) as e:
        raise DataError(f"{path}: unexpected array shape ({e}).") from None
    n = len(cam_poses)
    for a, j in enumerate(joints):
        if len(j) != n:
            raise DataError(f"{path}: actor {a} has {len(j)} frames of joints but {n} camera poses")
    valid = [np.asarray(v, dtype=bool) for v in raw.get("campose_valid", [np.ones(n, bool)] * len(joints))]
    genders = [str(g) for g in raw.get("genders", [])]
    name = raw.get("sequence", path.stem)
    return ThreeDPWSequence(str(name), joints, poses2d, cam_poses, K, np.asarray(raw["img_frame_ids"]), valid,
                            genders, raw)  # fmt: skip
