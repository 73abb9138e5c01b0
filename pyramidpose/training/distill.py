"""Knowledge distillation for the 2D trainer: a teacher's knowledge as extra targets.

Configured by the ``distill:`` section of a training config (:class:`~pyramidpose.training.config.
DistillConfig`) or by ``pyramidpose distill``. The teacher is any pose model pyramidpose can run:

* **heatmap mimicking** (``mode: heatmaps``; a checkpoint :func:`pyramidpose.load_model` reads):
  the frozen teacher runs on the student's augmented crops (resized to its input size) and its
  heatmaps, resampled to the student's grid in the codec geometry, are a second MSE target;
* **keypoint targets** (``mode: keypoints``; any backend of :func:`pyramidpose.inference.backends.
  load_backend`, e.g. the embedded BlazePose/MoveNet models or an exported ONNX model): the teacher
  predicts every training person once (image pixels and scores) and the dataset renders those
  keypoints as heatmaps under the *same* augmentation as the ground truth; keypoints scored below
  ``score_thr`` are no target;
* **pseudo-labels**: the unlabelled people of the training images (boxes without keypoints, not crowd)
  join the training set with the teacher's keypoints as their only target (ground-truth weight 0);
* **knowledge token** (ViTPose): :func:`learn_knowledge_token` appends one learnable token to a
  frozen heatmap teacher and trains only that token on the ground truth; the student is then built
  with ``knowledge_token: true``, gets the token copied in and frozen (``distill.knowledge_token``).

The loss is ``gt_weight * MSE(student, GT) + mimic_weight * MSE(student, teacher target)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pyramidpose.data.coco import CocoKeypointDataset, Instance, read_json
from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.training.config import Config, DistillConfig
from pyramidpose.training.datasets import collate, make_dataset
from pyramidpose.training.seeding import seed_everything
from pyramidpose.utils.weights_io import read_weights, write_weights

TOKEN_KIND = "knowledge_token"


# --------------------------------------------------------------------------------------------------
# Teachers
# --------------------------------------------------------------------------------------------------


def resolve_mode(dcfg: DistillConfig) -> str:
    """``heatmaps`` or ``keypoints`` for ``dcfg`` (``auto``: heatmaps when ``load_model`` reads the teacher)."""
    if dcfg.mode != "auto":
        return dcfg.mode
    return "heatmaps" if _reads_as_pose_model(dcfg.teacher) else "keypoints"


def _reads_as_pose_model(teacher: str | None) -> bool:
    if teacher is None or not Path(teacher).exists() or str(teacher).endswith(".onnx"):
        return False
    from pyramidpose.models.checkpoints import read_checkpoint

    try:
        read_checkpoint(teacher)
    except (CheckpointError, ConfigError):
        return False
    return True


class HeatmapTeacher:
    """A frozen heatmap model whose outputs, resampled to the student's grid, are targets."""

    def __init__(self, weights: str | os.PathLike[str], device: torch.device | str = "cpu", *, udp: bool = True):
        from pyramidpose import load_model

        self.model = load_model(weights, device=device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.input_size = tuple(self.model.config.input_size)
        self.udp = udp

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Teacher heatmaps of normalised student crops ``[B, 3, H, W]`` at the student's heatmap ``size``."""
        x = images
        if tuple(x.shape[-2:]) != self.input_size:  # same box, other resolution
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=self.udp)
        hm = self.model(x).float()
        if tuple(hm.shape[-2:]) != tuple(size):
            hm = F.interpolate(hm, size=size, mode="bilinear", align_corners=self.udp, antialias=True)
        return hm


def teacher_keypoints(
    backend: Any, instances: list[Instance], keypoint_set: str, *, progress: bool = True
) -> np.ndarray:
    """Run a pose backend once per image on all its ``instances``' boxes: ``[N, K, 3]`` (x, y, score).

    The backend's keypoints are converted to ``keypoint_set`` when its layout differs (missing
    keypoints get score 0). Unreadable images give all-zero rows (reported by the caller's count).
    """
    from tqdm import tqdm

    from pyramidpose.data.images import read_image
    from pyramidpose.skeletons import get_keypoint_set, keypoint_mapping

    dst = get_keypoint_set(keypoint_set)
    out = np.zeros((len(instances), dst.num_keypoints, 3), np.float32)
    by_image: dict[str, list[int]] = {}
    for i, inst in enumerate(instances):
        by_image.setdefault(inst.image_path, []).append(i)
    for path, idx in tqdm(by_image.items(), desc="teacher", disable=not progress, leave=False):
        try:
            image = read_image(path)
        except Exception:  # noqa: BLE001 - a bad image only loses its teacher targets
            continue
        boxes = np.stack([np.asarray(instances[i].bbox, np.float64) for i in idx])
        res = backend.predict(image, boxes)
        kps, scores = np.asarray(res.keypoints, np.float64), np.asarray(res.keypoint_scores, np.float64)
        rows = np.asarray(res.box_indices if len(res.box_indices) == len(kps) else np.arange(len(kps)), np.int64)
        if res.keypoint_set != dst.name:
            kps, scores = keypoint_mapping(res.keypoint_set, dst).apply(kps, scores)
        for r, kp, sc in zip(rows, kps, scores):
            out[idx[int(r)], :, :2] = kp
            out[idx[int(r)], :, 2] = np.where(np.isfinite(sc), sc, 0.0)
    return out


def unlabelled_instances(ann_file: Path, image_dir: Path, num_keypoints: int) -> list[Instance]:
    """People with a box but no labelled keypoint (and not crowd): pseudo-label candidates."""
    coco = read_json(ann_file, "annotation file")
    images = {int(im["id"]): im for im in coco.get("images", [])}
    out = []
    for a in coco.get("annotations", []):
        kp = np.asarray(a.get("keypoints") or [], np.float64)
        if a.get("iscrowd", 0) or int(a.get("image_id", -1)) not in images or (kp.size and (kp[2::3] > 0).any()):
            continue
        x, y, w, h = (float(v) for v in a.get("bbox", (0, 0, 0, 0)))
        if w < 1 or h < 1:
            continue
        im = images[int(a["image_id"])]
        out.append(Instance(
            image_id=int(im["id"]), image_path=str(image_dir / im["file_name"]), bbox=np.array([x, y, w, h]),
            keypoints=np.zeros((num_keypoints, 3), np.float32), ann_id=int(a.get("id", -1)),
        ))  # fmt: skip
    return out


def attach_keypoint_teacher(
    ds: CocoKeypointDataset, dcfg: DistillConfig, log: Callable[[str], Any] = print, *, progress: bool = True
) -> None:
    """Add pseudo-label people (if asked) and the teacher's keypoints of every person to ``ds``."""
    from pyramidpose.inference.backends import load_backend

    if dcfg.pseudo_labels:
        extra = unlabelled_instances(ds.ann_file, ds.image_dir, ds.kpt_set.num_keypoints)
        ds.instances = list(ds.instances) + extra
        log(f"distill: {len(extra)} unlabelled people of the training images join as pseudo-labelled")
    backend = load_backend(dcfg.teacher)
    kps = teacher_keypoints(backend, ds.instances, ds.kpt_set.name, progress=progress)
    ds.teacher_keypoints = kps
    ds.teacher_score_thr = float(dcfg.score_thr)
    kept = float((kps[..., 2] >= dcfg.score_thr).mean()) if len(kps) else 0.0
    log(f"distill: teacher {getattr(backend, 'name', dcfg.teacher)} on {len(kps)} people; "
        f"{kept:.0%} of its keypoints score >= {dcfg.score_thr}")  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Knowledge token
# --------------------------------------------------------------------------------------------------


def save_token(token: torch.Tensor, path: str | os.PathLike[str], teacher: str) -> Path:
    """Save a ``[1, 1, C]`` knowledge token in the one weights format (kind ``knowledge_token``)."""
    return write_weights(path, {"token": token}, TOKEN_KIND, {"teacher": str(teacher)})


def load_token(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read a token written by :func:`save_token` (``CheckpointError`` for anything else)."""
    try:
        token = read_weights(path, TOKEN_KIND).state_dict.get("token")
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: cannot read a knowledge token ({exc})") from None
    if token is None or token.ndim != 3 or token.shape[:2] != (1, 1):
        raise CheckpointError(f"{path}: not a knowledge token file (expected kind {TOKEN_KIND!r}, a [1, 1, C] 'token')")
    return token


def learn_knowledge_token(
    cfg: Config, teacher: str | os.PathLike[str], steps: int, *, log: Callable[[str], Any] = print,
    progress: bool = True,
) -> torch.Tensor:  # fmt: skip
    """ViTPose's token distillation, stage 1: a token appended to the frozen ``teacher`` and trained
    alone on the ground truth of ``cfg``'s training set (its augmentation, batch size, lr). Returns it."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from pyramidpose.models.checkpoints import load_state_dict_strict, read_checkpoint
    from pyramidpose.models.pose_model import ModelConfig, PoseModel
    from pyramidpose.training.losses import keypoint_mse

    if not _reads_as_pose_model(str(teacher)):
        raise ConfigError(f"the knowledge token needs a heatmap teacher checkpoint (load_model must read it), not {teacher!r}")
    sd, tcfg, fmt = read_checkpoint(teacher)
    if tcfg.attention and set(tcfg.attention) != {"global"}:
        raise ConfigError("the knowledge-token teacher must use global attention in every block")
    seed_everything(cfg.train.seed)
    model = PoseModel(ModelConfig.from_dict({**tcfg.to_dict(), "knowledge_token": True}))
    own = model.state_dict()
    load_state_dict_strict(model, {**sd, "backbone.knowledge_token": own["backbone.knowledge_token"]},
                           source=f"{teacher} ({fmt} format)")  # fmt: skip
    for name, p in model.named_parameters():
        p.requires_grad_(name == "backbone.knowledge_token")
    model.eval()  # frozen teacher: BatchNorm statistics and dropout stay as they are
    ds = make_dataset(cfg, True)
    if tuple(tcfg.input_size) != tuple(cfg.model.input_size):
        raise ConfigError(f"teacher input {tcfg.input_size} != student input {tuple(cfg.model.input_size)}: "
                          "learn the token at the teacher's input size")  # fmt: skip
    token = model.backbone.knowledge_token
    opt = torch.optim.AdamW([token], lr=cfg.optim.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, collate_fn=collate, generator=gen,
                        num_workers=0)  # fmt: skip
    done, losses = 0, []
    bar = tqdm(total=steps, desc="knowledge token", disable=not progress, leave=False)
    while done < steps:
        for batch in loader:
            with torch.enable_grad():
                loss = keypoint_mse(model(batch["image"]), batch["target"], batch["target_weight"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            losses.append(float(loss.detach()))
            done += 1
            bar.update(1)
            if done >= steps:
                break
    bar.close()
    log(f"knowledge token: {steps} steps with the frozen teacher, loss {np.mean(losses[:3]):.3e} -> "
        f"{np.mean(losses[-3:]):.3e}")  # fmt: skip
    return token.detach().clone()


def install_token(model: nn.Module, token: torch.Tensor) -> None:
    """Copy a learned knowledge token into a student built with ``knowledge_token: true`` and freeze it."""
    param = getattr(getattr(model, "backbone", None), "knowledge_token", None)
    if param is None:
        raise ConfigError("the student has no knowledge token: set model.knowledge_token: true")
    if tuple(param.shape) != tuple(token.shape):
        raise ConfigError(f"knowledge token of width {token.shape[-1]} does not fit a student of width "
                          f"{param.shape[-1]}: teacher and student must have the same width")  # fmt: skip
    with torch.no_grad():
        param.copy_(token.to(param.dtype))
    param.requires_grad_(False)
