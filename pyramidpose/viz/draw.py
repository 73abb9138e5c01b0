"""Skeleton overlays on RGB images (OpenCV drawing) and atomic image saving."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from pyramidpose.skeletons import KeypointSet, get_keypoint_set
from pyramidpose.utils.io import atomic_path

_BOX_COLOR = (255, 210, 0)


def _track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _layout(keypoint_set: str | KeypointSet, k: int) -> KeypointSet:
    """The named layout, or joints without limbs when the name is unknown (e.g. ``"none"``)."""
    if isinstance(keypoint_set, KeypointSet):
        return keypoint_set
    try:
        return get_keypoint_set(keypoint_set)
    except KeyError:
        return KeypointSet(str(keypoint_set), tuple(f"kp{i}" for i in range(k)), (), None, ())


def draw_poses(
    image: np.ndarray,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray | None = None,
    keypoint_set: str | KeypointSet = "coco",
    *,
    threshold: float = 0.3,
    bboxes: np.ndarray | None = None,
    track_ids: Sequence[int] | np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    radius: int | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw skeletons on a copy of ``image`` (``(H, W, 3)`` RGB uint8) and return it.

    Args:
        keypoints: ``(N, K, 2)`` (or ``(K, 2)``) image coordinates.
        keypoint_scores: ``(N, K)``; keypoints at or below ``threshold`` and limbs touching them are
            not drawn. ``None`` draws everything.
        keypoint_set: layout (limbs and colours).
        bboxes: optional ``(N, 4)`` ``xywh`` boxes to draw.
        track_ids: optional ids; the box and a ``#id`` label get a colour per id.
        labels: optional text per person (drawn above the box, after the track id).
        radius, thickness: joint radius and limb width in pixels (default: from the image size).
    """
    canvas = np.ascontiguousarray(np.array(image, dtype=np.uint8, copy=True))
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.size == 0:  # nobody in the image: nothing to draw
        return canvas
    if kp.ndim == 2:
        kp = kp[None]
    n = kp.shape[0]
    ks = _layout(keypoint_set, kp.shape[1])
    sc = np.ones(kp.shape[:2]) if keypoint_scores is None else np.asarray(keypoint_scores).reshape(n, -1)
    size = max(canvas.shape[:2])
    r = radius if radius is not None else max(2, round(size / 250))
    t = thickness if thickness is not None else max(1, round(size / 350))
    h, w = canvas.shape[:2]
    for i in range(n):
        ok = (sc[i] > threshold) & np.isfinite(kp[i]).all(axis=1)
        pts = np.round(kp[i]).astype(np.int64)
        for (a, b), color in zip(ks.limbs, ks.limb_colors):
            if ok[a] and ok[b]:
                cv2.line(canvas, tuple(map(int, pts[a])), tuple(map(int, pts[b])), color, t, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            x, y = int(pts[j, 0]), int(pts[j, 1])
            if -r <= x < w + r and -r <= y < h + r:
                cv2.circle(canvas, (x, y), r, ks.keypoint_colors[j], -1, cv2.LINE_AA)
        tid = None if track_ids is None else int(track_ids[i])
        color = _BOX_COLOR if tid is None else _track_color(tid)
        if bboxes is not None:
            x, y, bw, bh = (float(v) for v in bboxes[i])
            cv2.rectangle(canvas, (round(x), round(y)), (round(x + bw), round(y + bh)), color, t)
            text = " ".join(
                s for s in (None if tid is None else f"#{tid}", None if labels is None else labels[i]) if s
            )
            if text:
                scale = max(0.4, size / 1500)
                org = (round(x), max(12, round(y) - 4))
                cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), t + 2, cv2.LINE_AA)
                cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, t, cv2.LINE_AA)
    return canvas


def draw_result(image: np.ndarray, result: object, *, threshold: float = 0.3, draw_boxes: bool = True) -> np.ndarray:
    """Draw a :class:`~pyramidpose.inference.results.PoseResult` on ``image``."""
    return draw_poses(
        image,
        result.keypoints,  # type: ignore[attr-defined]
        result.keypoint_scores,  # type: ignore[attr-defined]
        result.keypoint_set,  # type: ignore[attr-defined]
        threshold=threshold,
        bboxes=result.bboxes if draw_boxes else None,  # type: ignore[attr-defined]
        track_ids=getattr(result, "track_ids", None),
    )


def save_image(path: str | os.PathLike[str], image: np.ndarray, quality: int = 92) -> Path:
    """Write an RGB uint8 image atomically; the format follows the suffix (.jpg, .png, ...)."""
    p = Path(path)
    bgr = cv2.cvtColor(np.asarray(image, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    with atomic_path(p) as tmp:
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if p.suffix.lower() in (".jpg", ".jpeg") else []
        if not cv2.imwrite(str(tmp), bgr, params):
            raise OSError(f"could not write image {p} (unsupported suffix?)")
    return p
