"""Person-box maths in ``xywh`` image pixels: clipping, IoU, greedy NMS (imports nothing from pyramidpose)."""

from __future__ import annotations

import numpy as np


def clip_boxes(boxes: np.ndarray, width: float, height: float, min_size: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Clip ``xywh`` boxes ``(N, 4)`` to the image ``[0, width] x [0, height]``.

    Returns the clipped boxes and a bool mask of the usable ones: finite, and both sides > ``min_size``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1 = np.clip(b[:, 0], 0, width)
    y1 = np.clip(b[:, 1], 0, height)
    x2 = np.clip(b[:, 0] + b[:, 2], 0, width)
    y2 = np.clip(b[:, 1] + b[:, 3], 0, height)
    out = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
    valid = np.isfinite(b).all(axis=1) & np.isfinite(out).all(axis=1) & (out[:, 2] > min_size) & (out[:, 3] > min_size)
    return out, valid


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(len(a), len(b))`` of ``xywh`` boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0:1], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1:2], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Indices kept by greedy box non-maximum suppression, highest score first."""
    order = np.argsort(-np.asarray(scores))
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        if len(order) == 1:
            break
        ious = iou_xywh(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
