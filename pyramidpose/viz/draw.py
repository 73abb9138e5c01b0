"""Skeleton overlays on RGB images (OpenCV drawing) and atomic image saving.

Readability rules (issue 13): every person gets one colour (per instance on photos, per track id
on videos) so overlapping people can be told apart; keypoint dots are clearly larger than the limb
lines and have a dark outline so they stay visible on any background; people and keypoints with
low scores are not drawn (both thresholds configurable); sizes follow the image size (readable from
320 px to 4K) but never swamp a small person. :class:`DrawStyle` holds these options.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pyramidpose.skeletons import KeypointSet, get_keypoint_set
from pyramidpose.utils.io import atomic_path

#: Distinct, saturated colours (RGB) that read well on photos; instance ``i`` uses ``PALETTE[i % n]``.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 56, 56), (50, 205, 255), (255, 178, 29), (72, 249, 10), (207, 56, 255), (255, 112, 31),
    (0, 212, 187), (255, 55, 199), (146, 204, 23), (52, 69, 255), (255, 238, 0), (0, 148, 255),
)  # fmt: skip
_OUTLINE = (20, 20, 20)


@dataclass(frozen=True)
class DrawStyle:
    """How overlays look. ``None`` sizes follow the image size (see :func:`auto_sizes`).

    Attributes:
        keypoint_threshold: keypoints scoring at or below this are not drawn (nor limbs touching them).
        instance_threshold: people whose instance score is below this are not drawn at all.
        kpt_radius: keypoint dot radius in pixels.
        line_width: limb and box line width in pixels.
        show_scores: write each person's score next to their box.
        show_boxes: draw the person boxes.
    """

    keypoint_threshold: float = 0.3
    instance_threshold: float = 0.2
    kpt_radius: int | None = None
    line_width: int | None = None
    show_scores: bool = False
    show_boxes: bool = True

    def __post_init__(self) -> None:
        for name in ("keypoint_threshold", "instance_threshold"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"DrawStyle.{name} must be in [0, 1], got {v}")
        for name in ("kpt_radius", "line_width"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"DrawStyle.{name} must be >= 1 pixel, got {v}")


def instance_color(index: int) -> tuple[int, int, int]:
    """The colour of person ``index`` (or track id ``index``): stable and distinct for neighbours."""
    return PALETTE[int(index) % len(PALETTE)]


def auto_sizes(height: int, width: int) -> tuple[int, int]:
    """``(line_width, kpt_radius)`` for an image: ~1 px lines and 3 px dots at 320 px, 8 and 13 at
    4K. The dot diameter is always at least twice the line width plus the outline."""
    size = max(int(height), int(width))
    line = max(1, round(size / 480))
    radius = max(3, round(1.6 * line) + 1)
    return line, radius


def _layout(keypoint_set: str | KeypointSet, k: int) -> KeypointSet:
    """The named layout, or joints without limbs when the name is unknown (e.g. ``"none"``)."""
    if isinstance(keypoint_set, KeypointSet):
        return keypoint_set
    try:
        ks = get_keypoint_set(keypoint_set)
    except KeyError:
        ks = None
    if ks is None or ks.num_keypoints != k:
        return KeypointSet(str(keypoint_set), tuple(f"kp{i}" for i in range(k)), (), None, ())
    return ks


def _darker(color: tuple[int, int, int], f: float = 0.55) -> tuple[int, int, int]:
    return tuple(int(c * f) for c in color)  # type: ignore[return-value]


def _lighter(color: tuple[int, int, int], f: float = 0.45) -> tuple[int, int, int]:
    return tuple(int(c + (255 - c) * f) for c in color)  # type: ignore[return-value]


def _label(canvas: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int], line: int) -> None:
    """``text`` on a filled box of ``color`` whose bottom-left corner is at (x, y), kept inside the image."""
    h, w = canvas.shape[:2]
    scale = max(0.35, max(h, w) / 1600)
    thick = max(1, line // 2)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(1, line)
    x = int(np.clip(x, 0, max(0, w - tw - 2 * pad)))
    y = int(np.clip(y, th + base + 2 * pad, h))
    cv2.rectangle(canvas, (x, y - th - base - 2 * pad), (x + tw + 2 * pad, y), color, -1)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (x + pad, y - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thick, cv2.LINE_AA)


def draw_poses(
    image: np.ndarray,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray | None = None,
    keypoint_set: str | KeypointSet = "coco",
    *,
    threshold: float | None = None,
    bboxes: np.ndarray | None = None,
    track_ids: Sequence[int] | np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    scores: np.ndarray | None = None,
    style: DrawStyle | None = None,
    radius: int | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw skeletons on a copy of ``image`` (``(H, W, 3)`` RGB uint8) and return it.

    Args:
        keypoints: ``(N, K, 2)`` (or ``(K, 2)``) image coordinates.
        keypoint_scores: ``(N, K)``; keypoints at or below the keypoint threshold and limbs touching
            them are not drawn. ``None`` draws everything.
        keypoint_set: layout (limbs; left-side joints get a lighter fill).
        threshold: keypoint threshold (overrides ``style.keypoint_threshold``).
        bboxes: optional ``(N, 4)`` ``xywh`` boxes.
        track_ids: optional ids: person colours follow the id (stable over a video) and a ``#id``
            label is written.
        labels: optional text per person, written after the id.
        scores: optional ``(N,)`` instance scores: people below ``style.instance_threshold`` are
            skipped; with ``style.show_scores`` the score is written.
        style: sizes, thresholds and labels (default :class:`DrawStyle`).
        radius, thickness: dot radius and line width (override the style).
    """
    style = style or DrawStyle()
    canvas = np.ascontiguousarray(np.array(image, dtype=np.uint8, copy=True))
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.size == 0:  # nobody in the image: nothing to draw
        return canvas
    if kp.ndim == 2:
        kp = kp[None]
    n = kp.shape[0]
    ks = _layout(keypoint_set, kp.shape[1])
    sc = np.ones(kp.shape[:2]) if keypoint_scores is None else np.asarray(keypoint_scores).reshape(n, -1)
    kthr = style.keypoint_threshold if threshold is None else float(threshold)
    h, w = canvas.shape[:2]
    auto_line, auto_radius = auto_sizes(h, w)
    line = thickness or style.line_width or auto_line
    rad = radius or style.kpt_radius or auto_radius
    fixed_size = bool(thickness or style.line_width or radius or style.kpt_radius)
    left = {i for i, name in enumerate(ks.keypoints) if name.startswith(("left", "l_"))}
    inst = np.ones(n) if scores is None else np.asarray(scores, np.float64).reshape(n)
    for i in range(n):
        if inst[i] < style.instance_threshold:
            continue
        ok = (sc[i] > kthr) & np.isfinite(kp[i]).all(axis=1)
        if not ok.any() and bboxes is None:
            continue
        tid = None if track_ids is None else int(track_ids[i])
        color = instance_color(i if tid is None else tid)
        li, ri = line, rad
        if not fixed_size and ok.sum() >= 2:  # a small person gets thinner lines and smaller dots
            extent = float(np.ptp(kp[i][ok], axis=0).max())
            ri = int(np.clip(round(extent / 18), 2, rad))
            li = int(np.clip(round(ri / 1.6), 1, line))
        pts = np.round(np.where(np.isfinite(kp[i]), kp[i], -1e6)).astype(np.int64)
        for a, b in ks.limbs:
            if ok[a] and ok[b]:
                pa, pb = tuple(map(int, pts[a])), tuple(map(int, pts[b]))
                cv2.line(canvas, pa, pb, _darker(color, 0.35), li + 2, cv2.LINE_AA)
                cv2.line(canvas, pa, pb, color, li, cv2.LINE_AA)
        outline = max(1, ri // 4)
        for j in np.flatnonzero(ok):
            x, y = int(pts[j, 0]), int(pts[j, 1])
            if -ri <= x < w + ri and -ri <= y < h + ri:
                cv2.circle(canvas, (x, y), ri, _OUTLINE, -1, cv2.LINE_AA)
                fill = _lighter(color) if j in left else color
                cv2.circle(canvas, (x, y), max(1, ri - outline), fill, -1, cv2.LINE_AA)
        if bboxes is not None:
            bx, by, bw, bh = (float(v) for v in bboxes[i])
            if style.show_boxes:
                cv2.rectangle(canvas, (round(bx), round(by)), (round(bx + bw), round(by + bh)), color, line)
            parts = [None if tid is None else f"#{tid}", None if labels is None else labels[i]]
            if style.show_scores and scores is not None:
                parts.append(f"{inst[i]:.2f}")
            text = " ".join(s for s in parts if s)
            if text:
                _label(canvas, text, round(bx), round(by), color, line)
    return canvas


def draw_result(
    image: np.ndarray,
    result: object,
    *,
    threshold: float | None = None,
    draw_boxes: bool = True,
    style: DrawStyle | None = None,
    track_ids: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Draw a :class:`~pyramidpose.inference.results.PoseResult` on ``image`` (colours per track id
    when the result or ``track_ids`` has them, else per person)."""
    ids = track_ids if track_ids is not None else getattr(result, "track_ids", None)
    style = style or DrawStyle()
    if not draw_boxes:
        style = dataclasses.replace(style, show_boxes=False)
    return draw_poses(
        image,
        result.keypoints,  # type: ignore[attr-defined]
        result.keypoint_scores,  # type: ignore[attr-defined]
        result.keypoint_set,  # type: ignore[attr-defined]
        threshold=threshold,
        bboxes=result.bboxes,  # type: ignore[attr-defined]
        track_ids=ids,
        scores=getattr(result, "scores", None),
        style=style,
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
