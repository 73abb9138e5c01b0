"""The one reader of person-box files: COCO detection results and COCO annotation files.

:func:`load_box_file` reads either

* a COCO **detection-results** list ``[{"image_id", "bbox": [x, y, w, h], "score"[, "category_id"]}]``
  (other categories and scores below ``det_thr`` are dropped), or
* a COCO **annotation** file (``images`` + ``annotations``): the non-crowd ground-truth person boxes
  with score 1, or with ``mmpose_gt`` the MMPose/ViTPose GT-box protocol (:func:`mmpose_gt_box`),

into a :class:`BoxFile`: boxes and scores per image id, and the image table (``file_name``,
``width``, ``height``) when the file or an annotation file given with ``images`` has one. Image files
are matched to ids with :meth:`BoxFile.image_id_for`. ``predict``, the pipeline and the training
dataset all read boxes through here. A malformed record is an error naming the file, the record and
the field; the file is refused whole.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.utils.jsonio import read_json


def mmpose_gt_box(bbox: Any, width: float, height: float) -> np.ndarray | None:
    """MMPose's sanitising of a ground-truth box: clipped to ``[0, W-1] x [0, H-1]`` and 1 pixel
    smaller (``x2 = min(W - 1, x1 + max(0, w - 1))``); ``None`` when empty or malformed."""
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1, x1 + max(0.0, w - 1)) if width > 0 else x + w
    y2 = min(height - 1, y1 + max(0.0, h - 1)) if height > 0 else y + h
    if not math.isfinite(x1 + y1 + x2 + y2) or x2 <= x1 or y2 <= y1:
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def _bbox(entry: dict[str, Any], where: str) -> list[float]:
    b = entry.get("bbox")
    if not isinstance(b, (list, tuple)) or len(b) != 4:
        raise DataError(f"{where}: 'bbox' must be a list [x, y, w, h], got {b!r}")
    try:
        out = [float(v) for v in b]
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'bbox' must hold numbers, got {b!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise DataError(f"{where}: 'bbox' must hold finite numbers, got {b!r}")
    return out


def _score(entry: dict[str, Any], where: str) -> float:
    try:
        s = float(entry.get("score", 1.0))
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'score' must be a number, got {entry.get('score')!r}") from None
    if not math.isfinite(s):
        raise DataError(f"{where}: 'score' must be a finite number, got {entry.get('score')!r}")
    return s


def _image_id(value: Any, where: str, field: str = "image_id") -> Any:
    """An image id: an integer or a string (JSON objects, lists, booleans and fractions refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"{where}: '{field}' must be an integer or a string, got {value!r:.60}")
    return value


def read_image_table(path: str | os.PathLike[str]) -> dict[Any, dict[str, Any]]:
    """Image id -> image record (``file_name``, ``width``, ``height``) of a COCO annotation file."""
    p = Path(path)
    return _image_table(read_json(p, "annotation file"), p)


def _image_table(data: Any, path: Path) -> dict[Any, dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path} is not a COCO annotation file (no 'images' list)")
    table: dict[Any, dict[str, Any]] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im:
            raise DataError(f"{path}: images[{i}] needs an 'id'")
        table[_image_id(im["id"], f"{path}: images[{i}]", "id")] = im
    return table


@dataclass
class BoxFile:
    """Person boxes of a box file, per image id.

    Attributes:
        path: the file read.
        kind: ``"detections"`` or ``"annotations"``.
        boxes: image id -> ``(N, 4)`` float64 ``xywh`` boxes, in file order.
        scores: image id -> ``(N,)`` float64 scores (1 for ground truth).
        images: image id -> COCO image record (``file_name``, ``width``, ``height``) when known.
        names: file name (without folders) -> image id, from ``images``.
    """

    path: Path
    kind: str
    boxes: dict[Any, np.ndarray] = field(default_factory=dict)
    scores: dict[Any, np.ndarray] = field(default_factory=dict)
    images: dict[Any, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, Any] = field(default_factory=dict)

    def image_ids(self) -> list[Any]:
        """Ids of the images with at least one box (integers first, in order)."""
        return sorted(self.boxes, key=lambda v: (isinstance(v, str), v))

    def get(self, image_id: Any) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)`` and scores ``(N,)`` of one image (empty when it has none)."""
        if image_id not in self.boxes:
            return np.zeros((0, 4)), np.zeros(0)
        return self.boxes[image_id], self.scores[image_id]

    def image_id_for(self, path: str | os.PathLike[str]) -> Any:
        """The image id of an image file: by ``file_name`` in the image table when there is one,
        else the integer stem (COCO's ``000000397133.jpg`` -> 397133), the stem or the name, if the
        file has boxes under that id; otherwise the same candidates without that condition."""
        p = Path(path)
        if p.name in self.names:
            return self.names[p.name]
        candidates = ([int(p.stem)] if p.stem.isdigit() else []) + [p.stem, p.name]
        for c in candidates:
            if c in self.boxes:
                return c
        return candidates[0]


def load_box_file(
    path: str | os.PathLike[str],
    *,
    det_thr: float = 0.0,
    person_category: int = 1,
    mmpose_gt: bool = False,
    images: str | os.PathLike[str] | dict[Any, dict[str, Any]] | None = None,
) -> BoxFile:
    """Read a detection-results or annotation file (see the module docstring).

    ``mmpose_gt`` (annotation files only): MMPose's GT-box protocol, i.e. only annotations with at
    least one labelled keypoint, boxes through :func:`mmpose_gt_box`. ``images``: an annotation file
    (or its image table) naming the files of a detection list whose ids are not file names.
    """
    p = Path(path)
    data = read_json(p, "boxes file")
    out = BoxFile(path=p, kind="detections")
    boxes: dict[Any, list[list[float]]] = {}
    scores: dict[Any, list[float]] = {}
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        out.kind = "annotations"
        out.images = _image_table(data, p)
        anns = data["annotations"]
        if not isinstance(anns, list):
            raise DataError(f"{p}: 'annotations' must be a list")
        for i, ann in enumerate(anns):
            where = f"{p}: annotations[{i}]"
            if not isinstance(ann, dict) or "image_id" not in ann:
                raise DataError(f"{where}: expected an object with 'image_id' and 'bbox'")
            if ann.get("category_id", person_category) != person_category or ann.get("iscrowd", 0):
                continue
            if _image_id(ann["image_id"], where) not in out.images:
                raise DataError(f"{where}: image_id {ann['image_id']!r} is not listed in 'images'")
            box = _bbox(ann, where)
            if mmpose_gt:
                try:
                    kps = np.asarray(ann.get("keypoints") or [0], dtype=np.float64)
                    area = float(ann.get("area", 1))
                    im = out.images[ann["image_id"]]
                    size = float(im.get("width", np.inf)), float(im.get("height", np.inf))
                except (TypeError, ValueError, OverflowError) as e:
                    raise DataError(f"{where}: keypoints, area or its image's width/height is not numeric ({e})") from None
                if kps.max(initial=0) == 0 or ann.get("num_keypoints", 1) == 0 or not area > 0:
                    continue
                clipped = mmpose_gt_box(box, *size)
                if clipped is None:
                    continue
                box = clipped.tolist()
            boxes.setdefault(ann["image_id"], []).append(box)
            scores.setdefault(ann["image_id"], []).append(1.0)
    elif isinstance(data, list):
        if mmpose_gt:
            raise DataError(f"{p}: --mmpose-gt-boxes needs a COCO annotation file, not a detection-results list")
        for i, det in enumerate(data):
            where = f"{p}: entry {i}"
            if not isinstance(det, dict) or "image_id" not in det:
                raise DataError(f"{where}: expected an object with 'image_id', 'bbox' and 'score'")
            if det.get("category_id", person_category) != person_category:
                continue
            _image_id(det["image_id"], where)
            box, score = _bbox(det, where), _score(det, where)
            if score < det_thr:
                continue
            boxes.setdefault(det["image_id"], []).append(box)
            scores.setdefault(det["image_id"], []).append(score)
        if images is not None:
            out.images = images if isinstance(images, dict) else read_image_table(images)
    else:
        raise DataError(
            f"{p}: expected a COCO detection-results list or an annotation file with 'images' and 'annotations'"
        )
    out.names = {Path(str(im.get("file_name", ""))).name: iid for iid, im in out.images.items()}
    out.boxes = {k: np.asarray(v, np.float64).reshape(-1, 4) for k, v in boxes.items()}
    out.scores = {k: np.asarray(v, np.float64) for k, v in scores.items()}
    return out
