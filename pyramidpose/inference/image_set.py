"""Top-down inference over a set of images with given person boxes (the ``predict`` image-set flow).

:func:`load_box_file` reads boxes from a COCO detection-results file or the ground-truth person boxes
of a COCO annotation file and pairs them with image files; :func:`run_image_set` runs a
:class:`~pyramidpose.inference.topdown.TopDownPredictor` over them (batched across images), skips and
reports unreadable images, optionally draws overlays, and returns COCO keypoint results plus a summary.
Command-line front ends (``pyramidpose predict``) only parse options and call these.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.data.images import list_images, read_image
from pyramidpose.errors import DataError


@dataclass
class ImageJob:
    """One image to process: its COCO ``image_id``, file, and person boxes (``xywh``) with scores."""

    image_id: int | str
    path: Path
    boxes: np.ndarray
    scores: np.ndarray


@dataclass
class ImageSetSummary:
    """What a run did: counts for the closing summary, plus the skipped files and why."""

    images: int = 0
    skipped_images: int = 0
    boxes: int = 0
    zero_area_boxes: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.images} images, {self.skipped_images} skipped, {self.boxes} boxes, "
            f"{self.zero_area_boxes} zero-area"
        )


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"boxes file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"boxes file {path} is not valid JSON: {e}") from None


def _bbox(entry: Any, where: str) -> list[float]:
    b = entry.get("bbox") if isinstance(entry, dict) else None
    if not isinstance(b, (list, tuple)) or len(b) != 4:
        raise DataError(f"{where}: 'bbox' must be a list [x, y, w, h], got {b!r}")
    try:
        return [float(v) for v in b]
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'bbox' must hold numbers, got {b!r}") from None


def _files_by_id(image_dir: Path) -> dict[Any, Path]:
    """Image files keyed by name, stem, and integer stem (COCO's ``000000397133.jpg`` -> 397133)."""
    out: dict[Any, Path] = {}
    for p in list_images(image_dir):
        out.setdefault(p.name, p)
        out.setdefault(p.stem, p)
        if p.stem.isdigit():
            out.setdefault(int(p.stem), p)
    return out


def load_box_file(
    path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    *,
    det_thr: float = 0.0,
    person_category: int = 1,
    mmpose_gt: bool = False,
) -> tuple[list[ImageJob], list[tuple[str, str]]]:
    """Person boxes per image from a COCO detection-results or annotation file.

    * Detection results: a JSON list of ``{"image_id", "bbox": [x, y, w, h], "score"[, "category_id"]}``;
      entries of other categories and with ``score < det_thr`` are dropped. Images are found in
      ``image_dir`` by integer file stem (COCO naming), stem or file name equal to ``image_id``.
    * Annotation file (a dict with ``images`` and ``annotations``): the non-crowd ground-truth boxes
      of ``person_category`` with score 1; files come from ``images[].file_name``. With
      ``mmpose_gt`` the MMPose/ViTPose GT-box protocol is used instead: only annotations with at
      least one labelled keypoint, boxes clipped to ``[0, W-1] x [0, H-1]`` and 1 pixel smaller
      (``x2 = min(W - 1, x1 + max(0, w - 1))``), as in MMPose's ``TopDownCocoDataset``.

    Returns the jobs (images with at least one box, in image-id order) and ``(image, reason)`` pairs
    for images named by the file but absent from ``image_dir``.
    """
    p = Path(path)
    data = _read_json(p)
    image_dir = Path(image_dir)
    boxes: dict[Any, list[list[float]]] = {}
    scores: dict[Any, list[float]] = {}
    files: dict[Any, Path | None] = {}
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        by_name = {q.name: q for q in list_images(image_dir)}
        sizes: dict[Any, tuple[float, float]] = {}
        for im in data["images"]:
            if not isinstance(im, dict) or "id" not in im:
                raise DataError(f"{p}: every entry of 'images' needs an 'id'")
            name = str(im.get("file_name", ""))
            files[im["id"]] = by_name.get(Path(name).name)
            sizes[im["id"]] = (float(im.get("width", np.inf)), float(im.get("height", np.inf)))
        for i, ann in enumerate(data["annotations"]):
            where = f"{p}: annotations[{i}]"
            if not isinstance(ann, dict) or "image_id" not in ann:
                raise DataError(f"{where}: expected an object with 'image_id' and 'bbox'")
            if ann.get("category_id", person_category) != person_category or ann.get("iscrowd", 0):
                continue
            if ann["image_id"] not in files:
                raise DataError(f"{where}: image_id {ann['image_id']!r} is not listed in 'images'")
            box = _bbox(ann, where)
            if mmpose_gt:
                kps = ann.get("keypoints") or [0]
                if max(kps) == 0 or ann.get("num_keypoints", 1) == 0:
                    continue
                width, height = sizes[ann["image_id"]]
                x1, y1 = max(0.0, box[0]), max(0.0, box[1])
                x2 = min(width - 1, x1 + max(0.0, box[2] - 1))
                y2 = min(height - 1, y1 + max(0.0, box[3] - 1))
                if not (ann.get("area", 1) > 0 and x2 > x1 and y2 > y1):
                    continue
                box = [x1, y1, x2 - x1, y2 - y1]
            boxes.setdefault(ann["image_id"], []).append(box)
            scores.setdefault(ann["image_id"], []).append(1.0)
    elif isinstance(data, list):
        lookup = _files_by_id(image_dir)
        for i, det in enumerate(data):
            where = f"{p}: entry {i}"
            if not isinstance(det, dict) or "image_id" not in det:
                raise DataError(f"{where}: expected an object with 'image_id', 'bbox' and 'score'")
            if det.get("category_id", person_category) != person_category:
                continue
            score = float(det.get("score", 1.0))
            if score < det_thr:
                continue
            iid = det["image_id"]
            files.setdefault(iid, lookup.get(iid, lookup.get(str(iid))))
            boxes.setdefault(iid, []).append(_bbox(det, where))
            scores.setdefault(iid, []).append(score)
    else:
        raise DataError(
            f"{p}: expected a COCO detection-results list or an annotation file with 'images' and "
            "'annotations'"
        )
    jobs: list[ImageJob] = []
    missing: list[tuple[str, str]] = []
    for iid in sorted(boxes, key=lambda v: (isinstance(v, str), v)):
        f = files.get(iid)
        if f is None:
            missing.append((f"image_id {iid}", f"no image file for it in {image_dir}"))
            continue
        jobs.append(ImageJob(iid, f, np.asarray(boxes[iid], np.float64), np.asarray(scores[iid], np.float64)))
    return jobs, missing


def run_image_set(
    predictor: Any,
    jobs: Iterable[ImageJob],
    *,
    draw_dir: str | os.PathLike[str] | None = None,
    draw_threshold: float = 0.3,
    oks_nms_thr: float | None = None,
    progress: bool = True,
    total: int | None = None,
    report: Callable[[str], None] | None = None,
) -> ImageSetSummary:
    """Run ``predictor`` (a ``TopDownPredictor``) over ``jobs``; collect COCO results and counts.

    Unreadable images are skipped with one line each through ``report`` (default: stderr) and
    counted. With ``draw_dir``, an overlay ``<stem>.jpg`` is written there per image (atomically).
    With ``oks_nms_thr`` (0.9 in ViTPose/MMPose evaluation) each image's poses go through greedy OKS-NMS
    using the crop areas (padded box, model aspect ratio) as scale, as MMPose does; by default every
    box gives one pose.
    """
    from tqdm import tqdm

    say = report or (lambda msg: tqdm.write(msg, file=sys.stderr))
    if oks_nms_thr is not None:
        ks = getattr(predictor, "keypoint_set", None)
        if ks is None or ks.sigmas is None:
            from pyramidpose.errors import ConfigError

            name = getattr(ks, "name", "unknown")
            raise ConfigError(f"OKS-NMS needs OKS sigmas, which keypoint set '{name}' does not define")
    summary = ImageSetSummary()
    draw = Path(draw_dir) if draw_dir is not None else None
    if total is None and hasattr(jobs, "__len__"):
        total = len(jobs)  # type: ignore[arg-type]
    bar = tqdm(total=total, unit="img", disable=not progress, file=sys.stderr)

    def items() -> Iterator[tuple[Any, np.ndarray, np.ndarray, np.ndarray]]:
        for job in jobs:
            try:
                image = read_image(job.path)
            except DataError as e:
                summary.skipped_images += 1
                summary.skipped.append((str(job.path), str(e)))
                say(f"skipped: {e}")
                bar.update(1)
                continue
            yield (job, image if draw is not None else None), image, job.boxes, job.scores

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*zero-area box.*")
        for (job, image), result in predictor.predict_tagged(items()):
            summary.images += 1
            summary.boxes += len(job.boxes)
            summary.zero_area_boxes += result.num_skipped_boxes
            if result.num_skipped_boxes:
                say(f"warning: {job.path.name}: skipped {result.num_skipped_boxes} zero-area box(es)")
            if oks_nms_thr is not None and len(result) > 1:
                result = apply_oks_nms(result, predictor, oks_nms_thr)
            summary.results.extend(result.to_coco(job.image_id))
            if draw is not None:
                from pyramidpose.viz.draw import draw_result, save_image

                save_image(draw / f"{job.path.stem}.jpg", draw_result(image, result, threshold=draw_threshold))
            bar.update(1)
    bar.close()
    return summary


def apply_oks_nms(result: Any, predictor: Any, thr: float) -> Any:
    """Greedy OKS-NMS of one image's :class:`PoseResult` (MMPose's evaluation protocol).

    The OKS scale of a pose is the area of its crop (``w * h`` of the padded box grown to the model's
    aspect ratio), the sigmas those of the keypoint set. Kept rows stay in their original order.
    """
    from pyramidpose.evaluation.nms import oks_nms
    from pyramidpose.geometry.crops import box_to_center_scale
    from pyramidpose.skeletons import get_keypoint_set

    h_in, w_in = predictor.input_size
    _, scales = box_to_center_scale(result.bboxes, w_in / h_in, getattr(predictor, "padding", 1.25))
    sigmas = get_keypoint_set(result.keypoint_set).sigmas_array()
    keep = oks_nms(result.keypoints, result.scores, scales.prod(axis=1), thr=thr, sigmas=sigmas)
    return result.select(np.sort(np.asarray(keep, dtype=np.int64)))
