"""Train a heatmap super-resolution network (:mod:`pyramidpose.models.heatmap_sr`).

Pairs are (low-resolution heatmaps, stride-4 ground-truth heatmaps) of the people of a COCO keypoint
file, with fresh box jitter every step (so the network sees every sub-pixel phase). The low-resolution
input is either

* ``source="gt"``: the ground truth encoded directly at stride 16 (or 8), or
* a pose model: its own heatmaps of the crop (flip-free, eval mode), resampled to the low grid, so
  the network learns to restore *that model's* maps rather than ideal Gaussians.

Targets and inputs use the same codec geometry (UDP by default, as ViTPose). The loss is
:func:`pyramidpose.training.losses.keypoint_mse` with the visibility weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pyramidpose.codecs.heatmap import HeatmapCodec, encode_msra
from pyramidpose.data.coco import Instance
from pyramidpose.geometry.crops import box_to_center_scale, image_to_crop
from pyramidpose.models.heatmap_sr import HeatmapSR, HeatmapSRConfig, upsample_heatmaps
from pyramidpose.training.losses import keypoint_mse
from pyramidpose.training.schedule import LRScheduler, Schedule
from pyramidpose.training.seeding import seed_everything


@dataclass
class HeatmapSRTrainConfig:
    """Settings of :func:`train_heatmap_sr`.

    Attributes:
        input_size: crop size ``(H, W)`` of the pose model; stride-4 targets are ``(H/4, W/4)``.
        low_stride: stride of the low-resolution input, 16 or 8.
        sigma: Gaussian sigma in heatmap pixels of each grid (2, as ViTPose at stride 4).
        udp: codec geometry (UDP or MSRA with unbiased sub-pixel Gaussians).
        steps, batch_size, lr: optimisation (Adam, cosine decay to 1% of ``lr``).
        jitter: box centre shift (fraction of the box) and log-scale range of the augmentation.
        patch: side of the stride-4 patches around each keypoint the loss is computed on (the
            network is convolutional; SRCNN also trains on sub-images); 0 = whole maps.
        seed: seeds the pairs and the initialisation.
    """

    input_size: tuple[int, int] = (256, 192)
    low_stride: int = 16
    sigma: float = 2.0
    udp: bool = True
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    jitter: float = 0.15
    patch: int = 24
    seed: int = 0


def crop_keypoints(
    instances: Sequence[Instance],
    input_size: tuple[int, int],
    *,
    udp: bool,
    rng: np.random.Generator | None = None,
    jitter: float = 0.0,
    padding: float = 1.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints of ``instances`` in crop pixels: ``(keypoints (N, K, 2), visible (N, K), centers, scales)``.

    Crops are the predictor's (box -> centre/scale with ``padding``); with ``rng`` and ``jitter`` the
    centre moves by up to ``jitter`` of the crop and the scale by up to ``exp(+-jitter)``.
    """
    h, w = input_size
    boxes = np.stack([np.asarray(i.bbox, np.float64) for i in instances])
    centers, scales = box_to_center_scale(boxes, w / h, padding)
    if rng is not None and jitter > 0:
        centers = centers + rng.uniform(-jitter, jitter, centers.shape) * scales
        scales = scales * np.exp(rng.uniform(-jitter, jitter, (len(scales), 1)))
    kps, vis = [], []
    for inst, c, s in zip(instances, centers, scales):
        kp = np.asarray(inst.keypoints, np.float64)
        kps.append(image_to_crop(kp[:, :2], c, s, (h, w), udp=udp))
        vis.append(kp[:, 2] > 0)
    return np.stack(kps), np.stack(vis).astype(np.float32), centers, scales


def encode_at(
    keypoints: np.ndarray, visible: np.ndarray, input_size: tuple[int, int], stride: int, *, udp: bool, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth heatmaps ``(N, K, H/stride, W/stride)`` and weights of crop-pixel keypoints
    (the codec's encoding under UDP; MSRA with DARK's unbiased sub-pixel Gaussians)."""
    h, w = input_size
    low = (h // stride, w // stride)
    if udp:
        return HeatmapCodec(input_size=(h, w), heatmap_size=low, sigma=sigma, udp=True).encode(keypoints, visible)
    return encode_msra(keypoints, visible, (h, w), low, sigma, unbiased=True)


def model_heatmaps_at(
    model: nn.Module, crops: torch.Tensor, low_size: tuple[int, int], *, udp: bool
) -> torch.Tensor:
    """A pose model's heatmaps of normalised ``crops`` resampled (anti-aliased) to ``low_size (h, w)``."""
    with torch.no_grad():
        hm = model(crops).float()
    if tuple(hm.shape[-2:]) == tuple(low_size):
        return hm
    return F.interpolate(hm, size=low_size, mode="bilinear", align_corners=udp, antialias=True)


def train_heatmap_sr(
    instances: Sequence[Instance],
    cfg: HeatmapSRTrainConfig,
    *,
    sr_config: HeatmapSRConfig | None = None,
    source: nn.Module | None = None,
    progress: bool = True,
    log: Callable[[str], Any] = print,
) -> tuple[HeatmapSR, list[float]]:
    """Train a :class:`HeatmapSR` on ``instances`` (labelled people); returns it (eval) and the losses.

    ``source`` = a pose model whose own heatmaps are the low-resolution input (its crops are cut from
    the instances' images); ``None`` = ground truth encoded at ``cfg.low_stride``.
    """
    from tqdm import tqdm

    if cfg.low_stride not in (8, 16):
        raise ValueError(f"low_stride must be 8 or 16, got {cfg.low_stride}")
    if not instances:
        raise ValueError("no labelled people to train the heatmap SR network on")
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    sr_cfg = sr_config or HeatmapSRConfig(factor=cfg.low_stride // 4, udp=cfg.udp)
    if sr_cfg.factor != cfg.low_stride // 4 or sr_cfg.udp != cfg.udp:
        raise ValueError(f"SR config (factor {sr_cfg.factor}, udp {sr_cfg.udp}) does not fit low_stride "
                         f"{cfg.low_stride} / udp {cfg.udp}")  # fmt: skip
    model = HeatmapSR(sr_cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = LRScheduler(opt, Schedule(total_steps=cfg.steps, kind="cosine", min_factor=0.01))
    images: dict[str, np.ndarray] = {}
    low_size = (cfg.input_size[0] // cfg.low_stride, cfg.input_size[1] // cfg.low_stride)
    losses: list[float] = []
    bar = tqdm(range(cfg.steps), desc="heatmap SR", disable=not progress, leave=False)
    for _ in bar:
        pick = [instances[i] for i in rng.integers(0, len(instances), cfg.batch_size)]
        kp, vis, centers, scales = crop_keypoints(pick, cfg.input_size, udp=cfg.udp, rng=rng, jitter=cfg.jitter)
        target, weight = encode_at(kp, vis, cfg.input_size, 4, udp=cfg.udp, sigma=cfg.sigma)
        if source is None:
            low_np, _ = encode_at(kp, vis, cfg.input_size, cfg.low_stride, udp=cfg.udp, sigma=cfg.sigma)
            low = torch.from_numpy(low_np)
        else:
            crops = _crops(pick, centers, scales, cfg.input_size, cfg.udp, images)
            low = model_heatmaps_at(source, crops, low_size, udp=cfg.udp)
        # the network is channel-shared: train on the labelled keypoints' maps only, as one-channel images
        keep = torch.from_numpy(weight.reshape(-1) > 0)
        low = low.reshape(-1, 1, *low.shape[-2:])[keep]
        tgt = torch.from_numpy(target).reshape(-1, 1, *target.shape[-2:])[keep]
        up = upsample_heatmaps(low, tgt.shape[-2:], udp=sr_cfg.udp, mode=sr_cfg.mode)
        if cfg.patch:
            up, tgt = _patches(up, tgt, cfg.patch, rng)
        loss = keypoint_mse(model.refine(up), tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.2e}")
    log(f"heatmap SR: {cfg.steps} steps, loss {np.mean(losses[:10]):.3e} -> {np.mean(losses[-10:]):.3e}")
    return model.eval(), losses


def _patches(
    up: torch.Tensor, target: torch.Tensor, size: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``size``-square patches of ``up``/``target`` ``[N, 1, H, W]`` around each target peak (randomly
    offset by up to a quarter patch, kept inside the map)."""
    n, _, h, w = target.shape
    size = min(size, h, w)
    flat = target.reshape(n, -1).argmax(1).numpy()
    cy, cx = flat // w, flat % w
    off = rng.integers(-(size // 4), size // 4 + 1, (2, n))
    y0 = np.clip(cy + off[0] - size // 2, 0, h - size)
    x0 = np.clip(cx + off[1] - size // 2, 0, w - size)
    rows = torch.from_numpy(y0)[:, None] + torch.arange(size)[None]  # [N, size]
    cols = torch.from_numpy(x0)[:, None] + torch.arange(size)[None]
    idx = torch.arange(n)[:, None, None]

    def cut(t: torch.Tensor) -> torch.Tensor:
        return t[:, 0][idx, rows[:, :, None], cols[:, None, :]].unsqueeze(1)

    return cut(up), cut(target)


def _crops(
    pick: Sequence[Instance], centers: np.ndarray, scales: np.ndarray, input_size: tuple[int, int], udp: bool,
    cache: dict[str, np.ndarray],
) -> torch.Tensor:  # fmt: skip
    from pyramidpose.data.images import read_image
    from pyramidpose.data.transforms import normalize_crops
    from pyramidpose.geometry.crops import warp_crop

    h, w = input_size
    out = []
    for inst, c, s in zip(pick, centers, scales):
        if inst.image_path not in cache:
            cache[inst.image_path] = read_image(inst.image_path)
        out.append(warp_crop(cache[inst.image_path], c, s, (h, w), udp=udp))
    return torch.from_numpy(normalize_crops(np.stack(out)))
