"""The 2D training datasets of a config: data paths checked up front, the dataset built with the
model's codec, and the batch collation shared by every trainer (2D engine, distillation, PAF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyramidpose.codecs.coordinates import coordinate_codec
from pyramidpose.codecs.heatmap import HeatmapCodec
from pyramidpose.data.coco import CocoKeypointDataset
from pyramidpose.data.proposals import ProposalModel
from pyramidpose.training.config import Config, require_data_paths, resolve_data_path


def check_data_paths(cfg: Config) -> dict[str, Path | None]:
    """Resolve every data path of ``cfg`` and fail (DataError) before training if one is missing."""
    if cfg.data.source == "synthetic":
        from pyramidpose.data.synthetic_crops import synthetic_paths

        return synthetic_paths(cfg)
    paths = {
        "data.train_ann": resolve_data_path(cfg, cfg.data.train_ann),
        "data.train_images": resolve_data_path(cfg, cfg.data.train_images),
        "data.val_ann": resolve_data_path(cfg, cfg.data.val_ann),
        "data.val_images": resolve_data_path(cfg, cfg.data.val_images) if cfg.data.val_ann else None,
        "data.val_detections": resolve_data_path(cfg, cfg.data.val_detections),
    }
    return require_data_paths(cfg, paths, folders={k for k in paths if k.endswith("images")})


def make_dataset(cfg: Config, train: bool, paths: dict[str, Path | None] | None = None) -> CocoKeypointDataset:
    """The training (augmented, with targets) or validation dataset of ``cfg``."""
    paths = paths or check_data_paths(cfg)
    d = cfg.data
    codec = HeatmapCodec.from_config(cfg.model)  # input size, sigma, UDP or MSRA: the model's codec
    target_codec = coordinate_codec(d.target, tuple(cfg.model.input_size), cfg.model.codec == "udp")
    if d.source == "synthetic":
        from pyramidpose.data.synthetic_crops import SyntheticKeypointDataset

        return SyntheticKeypointDataset(cfg, train, codec, paths, target_codec=target_codec)
    common = dict(keypoint_set=d.keypoint_set, codec=codec, padding=d.padding, target_codec=target_codec)
    if train:
        proposals = None
        if d.proposals and d.proposal_prob > 0:
            beside = Path(cfg.base_dir) / d.proposals if cfg.base_dir else None
            path = beside if beside is not None and beside.is_file() else resolve_data_path(cfg, d.proposals)
            proposals = ProposalModel.load(path)  # type: ignore[arg-type]
        return CocoKeypointDataset(
            paths["data.train_ann"], paths["data.train_images"], train=True,
            flip_prob=d.flip_prob, half_body_prob=d.half_body_prob,
            half_body_min_keypoints=d.half_body_min_keypoints, scale_factor=d.scale_factor,
            rot_factor=d.rot_factor, rot_prob=d.rot_prob, color_jitter=d.color_jitter,
            max_instances=d.max_train_instances, cache_images=d.cache_images, proposals=proposals,
            proposal_prob=d.proposal_prob, **common,
        )  # fmt: skip
    return CocoKeypointDataset(
        paths["data.val_ann"], paths["data.val_images"], train=False, detections=paths["data.val_detections"],
        det_score_thr=d.det_score_thr, cache_images=d.cache_images, **common,
    )  # fmt: skip


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack array fields into tensors; keep ``error`` strings as a list."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        vals = [s[key] for s in samples]
        if key == "error":
            out[key] = vals
        else:
            out[key] = torch.as_tensor(np.stack([np.asarray(v) for v in vals]))
    return out
