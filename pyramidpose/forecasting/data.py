"""CMU motion capture as forecasting data: subjects -> root-relative H36M-17 sequences at 25 fps.

Split (never tuned on the test subject): train on subjects 01 and 02, with the last
``val_fraction`` of every training sequence held out as validation (checkpoint selection); test on
held-out subject 03. Augmentation of the training part only: mirrored copies (H36M flip pairs,
negated lateral X axis) and copies resampled from 120 fps at other phases, each a separate sequence.

Poses are root-relative (pelvis subtracted in every frame) in the CMU world frame (meters, Y up,
global heading kept), optionally projected to 2D (``dims=2``: image-like x right, y down, from
an orthographic view along Z) for 2D keypoint forecasting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pyramidpose.errors import DataError
from pyramidpose.forecasting.windows import (
    MotionSequence,
    augment_mirrored,
    center_on_joint,
    resample_linear,
    split_tail,
)
from pyramidpose.paths import cmu_mocap_root
from pyramidpose.skeletons import H36M

ROOT_JOINT = 0  # H36M pelvis
LATERAL_AXIS = 0  # CMU world X (left of the rest pose); negating it mirrors the motion
UP_AXIS = 1  # CMU world Y
THORAX_JOINT = 8  # H36M thorax
# Median pelvis-to-thorax distance of the 2D training poses (orthographic view of subjects 01+02,
# 25 fps): pixel keypoints are scaled by their own median torso length to match it.
TORSO_2D_M = 0.342


@dataclass
class ForecastDataConfig:
    """Where the motion comes from and how it is cut.

    Attributes:
        root: CMU mocap directory (``subjects/`` or its parent).
        train_subjects, test_subjects: subject ids; the test subject is only used for the final table.
        fps: frame rate after resampling from 120 fps.
        t_in, t_out: observed and future frames per window.
        train_stride, eval_stride: frames between consecutive window starts.
        val_fraction: tail of each training sequence held out for validation.
        mirror: add mirrored copies of the training sequences.
        phases: resampling phases of the training sequences (1 = no extra copies).
        dims: 3 (joints in meters) or 2 (orthographic projection, x right / y down).
    """

    root: str = ""  # empty -> the data root's cmu-mocap (pyramidpose.paths.cmu_mocap_root)
    train_subjects: list[str] = field(default_factory=lambda: ["01", "02"])
    test_subjects: list[str] = field(default_factory=lambda: ["03"])
    fps: float = 25.0
    t_in: int = 50
    t_out: int = 25
    train_stride: int = 1
    eval_stride: int = 1
    val_fraction: float = 0.1
    mirror: bool = True
    phases: int = 2
    dims: int = 3


def to_2d(poses: np.ndarray) -> np.ndarray:
    """Orthographic 2D view of Y-up 3D poses: image x = world X, image y = -world Y (y down)."""
    poses = np.asarray(poses, dtype=np.float32)
    return np.stack([poses[..., 0], -poses[..., 1]], axis=-1)


def load_subject_sequences(
    root: str | os.PathLike[str], subjects: Sequence[str], progress: bool = True
) -> list[tuple[str, str, np.ndarray]]:
    """``(subject, name, poses [F, 17, 3] at 120 fps, meters)`` for every AMC file of ``subjects``.

    Loaded files are kept in memory (keyed by path and modification time), so training several
    configs in one process reads and solves the forward kinematics once.
    """
    from pyramidpose.data.mocap import list_cmu_sequences, load_cmu_sequence

    items = list_cmu_sequences(root, tuple(str(s) for s in subjects))
    if not items:
        raise DataError(f"{root}: no AMC files for subjects {list(subjects)}")
    out = []
    for subject, asf, amc in tqdm(items, desc="loading CMU mocap", disable=not progress, leave=False):
        key = (str(Path(asf).resolve()), str(Path(amc).resolve()), os.path.getmtime(amc), os.path.getmtime(asf))
        if key not in _CACHE:
            _CACHE[key] = np.asarray(load_cmu_sequence(asf, amc), dtype=np.float32)
        out.append((subject, Path(amc).stem, _CACHE[key]))
    return out


_CACHE: dict[tuple, np.ndarray] = {}


def prepare(poses_120: np.ndarray, fps: float, dims: int, phase: float = 0.0) -> np.ndarray:
    """120 fps world joints -> root-relative poses at ``fps`` (3D meters, or 2D projection)."""
    from pyramidpose.data.mocap import CMU_FPS

    p = center_on_joint(resample_linear(poses_120, CMU_FPS, fps, phase), ROOT_JOINT)
    return to_2d(p) if dims == 2 else p


def build_splits(
    cfg: ForecastDataConfig, progress: bool = True, with_test: bool = True
) -> dict[str, list[MotionSequence]]:
    """Sequences of the ``train`` (augmented), ``val`` and ``test`` splits."""
    overlap = set(map(str, cfg.train_subjects)) & set(map(str, cfg.test_subjects))
    if overlap:
        raise DataError(f"subjects {sorted(overlap)} are in both the training and the test split")
    train: list[MotionSequence] = []
    val: list[MotionSequence] = []
    for subject, name, p in load_subject_sequences(cfg.root or cmu_mocap_root(), cfg.train_subjects, progress):
        for ph in range(max(1, cfg.phases)):
            seq = MotionSequence(
                prepare(p, cfg.fps, cfg.dims, ph / max(1, cfg.phases)),
                subject,
                name if ph == 0 else f"{name}@phase{ph}",
                cfg.fps,
            )
            head, tail = split_tail(seq, cfg.val_fraction) if cfg.val_fraction > 0 else (seq, None)
            train.append(head)
            if ph == 0 and tail is not None:
                val.append(tail)
    if cfg.mirror:
        train = augment_mirrored(train, H36M.flip_index(), LATERAL_AXIS)
    splits = {"train": train, "val": val}
    if with_test:
        splits["test"] = load_test_sequences(cfg, progress)
    return splits


def load_test_sequences(cfg: ForecastDataConfig, progress: bool = True) -> list[MotionSequence]:
    """Held-out test sequences (no augmentation)."""
    return [
        MotionSequence(prepare(p, cfg.fps, cfg.dims), subject, name, cfg.fps)
        for subject, name, p in load_subject_sequences(cfg.root or cmu_mocap_root(), cfg.test_subjects, progress)
    ]
