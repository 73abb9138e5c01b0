"""Validation during training: the persons of a validation dataset through the user-facing predictor.

Crops are turned into keypoints by :class:`~pyramidpose.inference.topdown.TopDownPredictor` (the
same code ``pyramidpose predict`` runs), with the dataset's codec, keypoint set and box padding, so
the AP logged during training is the AP of ``pyramidpose predict`` + ``pyramidpose eval`` on the same
checkpoint and boxes.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyramidpose.data.coco import CocoKeypointDataset, Instance
from pyramidpose.errors import DataError
from pyramidpose.evaluation.coco_eval import coco_keypoint_eval
from pyramidpose.inference.topdown import TopDownPredictor
from pyramidpose.training.distributed import DistInfo, all_gather_objects
from pyramidpose.utils.device import Precision, choose_precision


def predict_instances(
    model: nn.Module,
    dataset: CocoKeypointDataset,
    batch_size: int = 32,
    flip_test: bool = True,
    device: torch.device | str = "cpu",
    precision: Precision | str = "auto",
    indices: list[int] | None = None,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """COCO keypoint results for the persons of a validation ``dataset`` (or its ``indices``).

    Persons are grouped by image (in first-appearance order) and run through a
    :class:`TopDownPredictor` built with the dataset's codec, keypoint set and padding. Returns the
    results and the counts of unreadable images (one count per person of such an image).
    """
    from tqdm import tqdm

    if isinstance(precision, str):  # a config's train.amp (auto, fp32/none, bf16, fp16)
        precision = choose_precision(precision, torch.device(device))
    idx = list(range(len(dataset))) if indices is None else list(indices)
    by_image: dict[str, list[Instance]] = {}
    for i in idx:
        inst = dataset.instances[i]
        by_image.setdefault(inst.image_path, []).append(inst)
    predictor = TopDownPredictor(
        model, codec=dataset.codec, device=device, flip_test=flip_test, batch_size=batch_size,
        precision=precision.name, keypoint_set=dataset.kpt_set, padding=dataset.padding,
        target_codec=getattr(dataset, "target_codec", None),
    )  # fmt: skip
    bad: Counter[str] = Counter()

    def items() -> Iterator[tuple[Any, np.ndarray, np.ndarray, np.ndarray]]:
        for insts in tqdm(by_image.values(), desc="validate", disable=not progress, leave=False):
            try:
                image = dataset.load_image(insts[0])
            except DataError as exc:
                bad[str(exc)] += len(insts)
                continue
            boxes = np.stack([inst.bbox for inst in insts]).astype(np.float64)
            scores = np.array([inst.score for inst in insts], np.float64)
            yield insts[0].image_id, image, boxes, scores

    results: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*zero-area box.*")
        for image_id, result in predictor.predict_tagged(items()):
            results.extend(result.to_coco(image_id))
    return results, bad


def coco_ap(ann_file: Path, results: list[dict[str, Any]], sigmas: Any = None) -> dict[str, float]:
    """COCO keypoint AP/AR of ``results`` against ``ann_file`` (0 when there are no results)."""
    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR": 0.0}
    stats = coco_keypoint_eval(str(ann_file), results, sigmas=sigmas)
    return {k: float(v) for k, v in dict(stats).items() if isinstance(v, (int, float))}


def validate(
    model: nn.Module,
    dataset: CocoKeypointDataset,
    cfg: Any,
    info: DistInfo,
    precision: Precision | str = "auto",
    progress: bool = False,
) -> dict[str, float] | None:
    """Predict on this rank's share of ``dataset``, gather on rank 0 and compute COCO AP there.

    ``model`` may be wrapped in DistributedDataParallel. Returns the metrics on rank 0 and ``None``
    on the other ranks.
    """
    net = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    mine = list(range(info.rank, len(dataset), info.world_size))
    results, bad = predict_instances(
        net, dataset, cfg.eval.batch_size, cfg.eval.flip_test, info.device, precision, indices=mine,
        progress=progress,
    )  # fmt: skip
    gathered = all_gather_objects((results, dict(bad)), info)
    if not info.is_main:
        return None
    all_results = [r for part, _ in gathered for r in part]
    skipped = sum(sum(b.values()) for _, b in gathered)
    kset = dataset.kpt_set
    metrics = coco_ap(dataset.ann_file, all_results, kset.sigmas_array() if kset.sigmas is not None else None)
    metrics["num_predictions"] = float(len(all_results))
    metrics["skipped"] = float(skipped)
    return metrics
