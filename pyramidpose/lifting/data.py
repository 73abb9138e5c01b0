"""2D-3D training pairs from motion capture seen by random virtual cameras.

A :class:`MocapSequence` holds one CMU trial as world-frame 3D joints (meters, Y up, see
:mod:`pyramidpose.data.mocap`) in two layouts: H36M-17 (the 3D target) and COCO-17 (whose
projection is the 2D input, so the lifter accepts COCO-17 detections).

:func:`sample_pairs` draws a batch: random trials and frames, one random virtual camera per sample
(:func:`pyramidpose.geometry.cameras.random_virtual_camera`, aimed near the subject), 2D = COCO
projection in pixels (+ optional Gaussian detector noise and dropped joints) normalised by image
size, 3D = H36M joints in that camera's frame, root-relative. Training cameras aim at a point up
to ``aim_offset_m`` beside the subject (and move back as much), so subjects appear off-centre as
in the static-camera test set. For temporal models the 2D is a
window of ``window`` frames (edge-replicated at sequence ends) and the 3D target is its centre
frame (or last frame if ``causal``).

:func:`make_eval_set` builds a fixed, seeded test set: each trial filmed by ``cameras_per_seq``
static cameras aimed at the trial's mean root position, full sequences (for temporal models).
:func:`sample_multiview` draws two or more calibrated views of the same frame for the weakly
supervised multi-view mode (2D only; the 3D is returned for evaluation, never for the loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyramidpose.data.mocap import (
    CMU_FPS,
    _cached_asf,
    forward_kinematics,
    list_cmu_sequences,
    parse_amc,
    resample,
    to_coco17,
    to_h36m17,
)
from pyramidpose.geometry.cameras import Camera, random_virtual_camera

__all__ = [
    "MocapSequence",
    "VirtualCameraConfig",
    "load_cmu_subjects",
    "sample_pairs",
    "make_eval_set",
    "EvalSequence",
    "sample_multiview",
    "random_cameras",
    "normalize_2d",
]


@dataclass
class MocapSequence:
    """One trial: ``h36m`` and ``coco`` world joints ``[F, 17, 3]`` meters at ``fps``."""

    name: str
    subject: str
    h36m: np.ndarray
    coco: np.ndarray
    fps: float


@dataclass
class VirtualCameraConfig:
    """Ranges for random virtual cameras and detector-like corruption of the 2D input."""

    image_size: tuple[int, int] = (1000, 1000)
    azimuth_deg: tuple[float, float] = (0.0, 360.0)
    elevation_deg: tuple[float, float] = (-10.0, 35.0)
    distance_m: tuple[float, float] = (3.5, 8.0)
    focal_px: tuple[float, float] = (700.0, 1500.0)
    principal_jitter_px: float = 20.0
    target_jitter_m: float = 0.3
    aim_offset_m: float = 1.0  # training cameras aim up to this far (horizontally) from the root
    noise_px: float = 0.0  # max std of Gaussian 2D noise (per sample std ~ U(0, noise_px))
    drop_prob: float = 0.0  # probability that a joint is dropped (set to 0 in normalised coords)
    extra: dict = field(default_factory=dict)


def load_cmu_subjects(
    root: str | Path, subjects: tuple[str, ...] | list[str], fps: float = 30.0, progress: bool = False
) -> list[MocapSequence]:
    """Parse every trial of ``subjects`` under ``root`` (``.../cmu-mocap[/subjects]``), resampled
    to ``fps``. Trials shorter than 2 frames after resampling are skipped."""
    from tqdm import tqdm

    out = []
    items = list_cmu_sequences(root, tuple(subjects))
    for subject, asf, amc in tqdm(items, desc="mocap", disable=not progress):
        skel = _cached_asf(asf)
        pos, names = forward_kinematics(skel, parse_amc(amc))
        h36m, coco = to_h36m17(pos, names), to_coco17(pos, names)
        if fps != CMU_FPS:
            h36m, coco = resample(h36m, CMU_FPS, fps), resample(coco, CMU_FPS, fps)
        if len(h36m) >= 2:
            out.append(MocapSequence(Path(amc).stem, subject, h36m.astype(np.float32), coco.astype(np.float32), fps))
    return out


def normalize_2d(uv: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels -> VideoPose3D screen coordinates (same as :func:`pyramidpose.models.lifting.normalize_screen`)."""
    return uv * (2.0 / width) - np.array([1.0, height / width], dtype=uv.dtype)


def _camera(rng: np.random.Generator, target: np.ndarray, cfg: VirtualCameraConfig, extra_dist: float = 0.0) -> Camera:
    return random_virtual_camera(
        rng, target,
        azimuth_deg=cfg.azimuth_deg, elevation_deg=cfg.elevation_deg,
        distance_m=(cfg.distance_m[0] + extra_dist, cfg.distance_m[1] + extra_dist),
        focal_px=cfg.focal_px, image_size=cfg.image_size,
        principal_jitter_px=cfg.principal_jitter_px, target_jitter_m=cfg.target_jitter_m,
    )  # fmt: skip


def random_cameras(rng: np.random.Generator, targets: np.ndarray, cfg: VirtualCameraConfig,
                   extra_dist: np.ndarray | float = 0.0) -> tuple:
    """Vectorised :func:`~pyramidpose.geometry.cameras.random_virtual_camera` for targets ``[B, 3]``
    (Y-up world): returns ``K [B, 3, 3]``, ``R [B, 3, 3]``, ``t [B, 3]``."""
    B = len(targets)
    az = np.radians(rng.uniform(*cfg.azimuth_deg, B))
    el = np.radians(rng.uniform(*cfg.elevation_deg, B))
    dist = rng.uniform(*cfg.distance_m, B) + extra_dist
    tgt = targets + rng.normal(0.0, cfg.target_jitter_m / 2, (B, 3))
    center = tgt + dist[:, None] * np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], 1)
    f = tgt - center
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    r = np.cross(f, np.array([0.0, 1.0, 0.0]))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    d = np.cross(f, r)
    R = np.stack([r, d, f], 1)
    t = -np.einsum("bij,bj->bi", R, center)
    foc = rng.uniform(*cfg.focal_px, B)
    w, h = cfg.image_size
    K = np.zeros((B, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = foc
    K[:, 0, 2] = w / 2 + rng.uniform(-1, 1, B) * cfg.principal_jitter_px
    K[:, 1, 2] = h / 2 + rng.uniform(-1, 1, B) * cfg.principal_jitter_px
    K[:, 2, 2] = 1.0
    return K, R, t


def _project(X: np.ndarray, cams_K: np.ndarray, cams_R: np.ndarray, cams_t: np.ndarray) -> tuple:
    """X [B, ..., 3] world; per-sample K/R/t [B, 3, 3]/[B, 3] -> (uv [B, ..., 2], Xc [B, ..., 3])."""
    B = X.shape[0]
    flat = X.reshape(B, -1, 3)
    Xc = np.einsum("bij,bnj->bni", cams_R, flat) + cams_t[:, None, :]
    z = np.maximum(Xc[..., 2:3], 1e-3)
    xy = Xc[..., :2] / z
    u = cams_K[:, None, 0, 0] * xy[..., 0] + cams_K[:, None, 0, 2]
    v = cams_K[:, None, 1, 1] * xy[..., 1] + cams_K[:, None, 1, 2]
    uv = np.stack([u, v], -1)
    return uv.reshape(*X.shape[:-1], 2), Xc.reshape(X.shape)


def _corrupt(rng: np.random.Generator, uv: np.ndarray, cfg: VirtualCameraConfig) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like noise (per-sample std ~ U(0, noise_px)) and dropped joints -> (uv, visible)."""
    B = uv.shape[0]
    if cfg.noise_px > 0:
        std = rng.uniform(0.0, cfg.noise_px, size=(B,) + (1,) * (uv.ndim - 1))
        uv = uv + rng.normal(size=uv.shape) * std
    vis = np.ones(uv.shape[:-1], dtype=bool)
    if cfg.drop_prob > 0:
        vis = rng.random(uv.shape[:-1]) >= cfg.drop_prob
    return uv, vis


def sample_pairs(
    seqs: list[MocapSequence],
    rng: np.random.Generator,
    batch_size: int,
    cfg: VirtualCameraConfig,
    window: int = 1,
    causal: bool = False,
) -> dict[str, np.ndarray]:
    """A random training batch (see module doc).

    Returns ``x2d [B, window, 17, 2]`` (or ``[B, 17, 2]`` for ``window == 1``) normalised COCO 2D,
    ``visible`` (same shape without the last axis), ``y3d [B, 17, 3]`` root-relative H36M joints in
    the camera frame (meters), ``y3d_abs`` the same before root subtraction.
    """
    lengths = np.array([len(s.h36m) for s in seqs], dtype=np.float64)
    which = rng.choice(len(seqs), size=batch_size, p=lengths / lengths.sum())
    w, h = cfg.image_size
    offsets = np.arange(window) - ((window - 1) if causal else window // 2)
    lengths_i = lengths.astype(np.int64)[which]
    c = (rng.random(batch_size) * lengths_i).astype(np.int64)
    X2 = np.empty((batch_size, window, 17, 3))
    X3 = np.empty((batch_size, 17, 3))
    targets = np.empty((batch_size, 3))
    for k, si in enumerate(which):
        s = seqs[si]
        X2[k] = s.coco[np.clip(c[k] + offsets, 0, lengths_i[k] - 1)]
        X3[k] = s.h36m[c[k]]
        targets[k] = s.h36m[c[k], 0]
    # aim off the subject (it need not be centred in the image); push the camera back by as much
    ang = rng.uniform(0, 2 * np.pi, batch_size)
    rad = cfg.aim_offset_m * np.sqrt(rng.random(batch_size))
    targets[:, 0] += rad * np.cos(ang)
    targets[:, 2] += rad * np.sin(ang)
    K, R, t = random_cameras(rng, targets, cfg, extra_dist=rad)
    uv, _ = _project(X2, K, R, t)
    _, y_abs = _project(X3, K, R, t)
    uv, vis = _corrupt(rng, uv, cfg)
    x = normalize_2d(uv, w, h)
    x = np.where(vis[..., None], x, 0.0)
    if window == 1:
        x, vis = x[:, 0], vis[:, 0]
    y = y_abs - y_abs[:, :1]
    return {"x2d": x.astype(np.float32), "visible": vis, "y3d": y.astype(np.float32),
            "y3d_abs": y_abs.astype(np.float32)}  # fmt: skip


@dataclass
class EvalSequence:
    """One trial seen by one static camera: ``x2d [F, 17, 2]`` normalised COCO 2D, ``y3d [F, 17, 3]``
    root-relative H36M joints in the camera frame (meters)."""

    name: str
    x2d: np.ndarray
    y3d: np.ndarray
    camera: Camera


def make_eval_set(
    seqs: list[MocapSequence], cfg: VirtualCameraConfig, seed: int = 0, cameras_per_seq: int = 4
) -> list[EvalSequence]:
    """Fixed test set: each trial filmed by ``cameras_per_seq`` seeded static virtual cameras aimed
    at the trial's mean root, pushed back by the root's largest horizontal excursion so the subject
    stays in front of the camera. Noise/drop settings of ``cfg`` apply (seeded)."""
    rng = np.random.default_rng(seed)
    out = []
    w, h = cfg.image_size
    for s in seqs:
        root = s.h36m[:, 0].astype(np.float64)
        target = root.mean(0)
        excursion = float(np.linalg.norm((root - target)[:, [0, 2]], axis=1).max())
        for k in range(cameras_per_seq):
            cam = _camera(rng, target, cfg, extra_dist=excursion)
            uv, _ = _project(s.coco[None].astype(np.float64), cam.K[None], cam.R[None], cam.t[None])
            _, y_abs = _project(s.h36m[None].astype(np.float64), cam.K[None], cam.R[None], cam.t[None])
            uv, vis = _corrupt(rng, uv, cfg)
            x = np.where(vis[..., None], normalize_2d(uv, w, h), 0.0)[0]
            y = y_abs[0] - y_abs[0][:, :1]
            out.append(EvalSequence(f"{s.name}/cam{k}", x.astype(np.float32), y.astype(np.float32), cam))
    return out


def sample_multiview(
    seqs: list[MocapSequence],
    rng: np.random.Generator,
    batch_size: int,
    cfg: VirtualCameraConfig,
    num_views: int = 2,
) -> dict[str, np.ndarray]:
    """Several calibrated views of the same frames (weak supervision).

    Returns per sample and view: ``x2d [B, V, 17, 2]`` normalised COCO 2D (network input, with
    ``cfg`` noise), ``obs2d [B, V, 17, 2]`` H36M-layout 2D pixels (what a 2D annotator/detector
    in the H36M layout gives; same noise model), ``K [B, V, 3, 3]``, ``R [B, V, 3, 3]``,
    ``t [B, V, 3]``; and ``y3d [B, V, 17, 3]`` root-relative camera-frame 3D for evaluation only.
    """
    lengths = np.array([len(s.h36m) for s in seqs], dtype=np.float64)
    which = rng.choice(len(seqs), size=batch_size, p=lengths / lengths.sum())
    w, h = cfg.image_size
    B, V = batch_size, num_views
    c = (rng.random(B) * lengths.astype(np.int64)[which]).astype(np.int64)
    coco = np.stack([seqs[si].coco[ci] for si, ci in zip(which, c)]).astype(np.float64)
    h36m = np.stack([seqs[si].h36m[ci] for si, ci in zip(which, c)]).astype(np.float64)
    K, R, t = random_cameras(rng, np.repeat(h36m[:, 0], V, 0), cfg)
    coco, h36m = np.repeat(coco, V, 0), np.repeat(h36m, V, 0)
    uv, _ = _project(coco, K, R, t)
    obs, y_abs = _project(h36m, K, R, t)
    uv, vis = _corrupt(rng, uv, cfg)
    obs, _ = _corrupt(rng, obs, cfg)
    x = np.where(vis[..., None], normalize_2d(uv, w, h), 0.0)
    y = y_abs - y_abs[:, :1]
    return {
        "x2d": x.reshape(B, V, 17, 2).astype(np.float32),
        "obs2d": obs.reshape(B, V, 17, 2).astype(np.float32),
        "K": K.reshape(B, V, 3, 3).astype(np.float32),
        "R": R.reshape(B, V, 3, 3).astype(np.float32),
        "t": t.reshape(B, V, 3).astype(np.float32),
        "y3d": y.reshape(B, V, 17, 3).astype(np.float32),
    }
