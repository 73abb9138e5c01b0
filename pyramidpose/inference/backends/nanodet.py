"""NanoDet-m person detector (embedded ONNX, COCO-trained): class 0 of its 80, GFL box decoding, NMS.

The image is letterboxed into the 416x416 input (aspect kept, padded bottom/right) or, with
``letterbox=False``, stretched; optionally also run on overlapping tiles (``tiles``: a list of grid
sizes, e.g. ``(2,)`` adds a 2x2 grid of tiles) for small people in large images. Per stride
8/16/32 the model gives a (sigmoid) class map and a GFL box map: each side (left, top, right,
bottom) is a distribution over 11 bins, whose expectation times the stride is the distance from
the cell centre. Boxes of all levels (and tiles) go through one NMS. Measured on coco-mini train
(person-box AP, ``benchmarks/eval_detectors.py``): letterbox 0.354 vs stretch 0.300; adding 2x2
tiles 0.246 (more recall, more false positives), so no tiles by default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyramidpose.geometry.boxes import box_nms
from pyramidpose.inference.backends.onnx_models import embedded_model_path, onnx_session

MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
STRIDES = (8, 16, 32)
INPUT = 416


class NanoDetDetector:
    """Person boxes (xywh, image pixels) and scores from NanoDet-m.

    Args:
        score_threshold: person score below which boxes are dropped.
        nms_iou: IoU above which the lower-scoring box is suppressed.
        letterbox: keep the aspect ratio (pad) instead of stretching to 416x416.
        tiles: extra tile grids (e.g. ``(2,)``) run besides the whole image; None or () for none.
        centre_offset: cell centre at (i + centre_offset) x stride (0.5 measured: train box AP 0.354,
            0 gives 0.181).
        max_detections: keep at most this many boxes.
    """

    name = "nanodet"

    def __init__(
        self,
        score_threshold: float = 0.3,
        nms_iou: float = 0.6,
        letterbox: bool = True,
        tiles: tuple[int, ...] | None = None,
        centre_offset: float = 0.5,
        max_detections: int = 100,
        num_threads: int = 2,
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.letterbox = bool(letterbox)
        self.tiles = tuple(tiles or ())
        self.centre_offset = float(centre_offset)
        self.max_detections = int(max_detections)
        self.session = onnx_session(embedded_model_path("nanodet"), num_threads)
        self._input = self.session.get_inputs()[0].name
        outs = {o.name: o.shape for o in self.session.get_outputs()}
        # class maps have 80 channels, box maps 44; sort each kind by cell count (stride 8 first)
        self._cls = sorted((n for n, s in outs.items() if s[-1] == 80), key=lambda n: -outs[n][1])
        self._box = sorted((n for n, s in outs.items() if s[-1] != 80), key=lambda n: -outs[n][1])
        self._bins = outs[self._box[0]][-1] // 4

    def _window(self, image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw person boxes (x1y1x2y2, image pixels) and scores of one window of the image."""
        import cv2

        crop = image[y0:y1, x0:x1]
        h, w = crop.shape[:2]
        if self.letterbox:
            s = INPUT / max(h, w)
            sx = sy = s
            nh, nw = max(1, round(h * s)), max(1, round(w * s))
        else:
            sx, sy = INPUT / w, INPUT / h
            nh, nw = INPUT, INPUT
        resized = cv2.resize(
            crop, (nw, nh), interpolation=cv2.INTER_AREA if max(sx, sy) < 1 else cv2.INTER_LINEAR
        )
        canvas = np.zeros((INPUT, INPUT, 3), np.float32)
        canvas[:] = MEAN_BGR  # padding is zero after normalisation
        canvas[:nh, :nw] = resized[..., ::-1]
        x = ((canvas - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None]
        res = dict(zip(self._cls + self._box, self.session.run(self._cls + self._box, {self._input: x})))
        boxes, scores = [], []
        for stride, cn, bn in zip(STRIDES, self._cls, self._box):
            cls = res[cn][0, :, 0]
            sel = np.flatnonzero(cls >= self.score_threshold)
            if not len(sel):
                continue
            dist = res[bn][0, sel].reshape(-1, 4, self._bins)
            dist = np.exp(dist - dist.max(-1, keepdims=True))
            dist /= dist.sum(-1, keepdims=True)
            d = (dist * np.arange(self._bins, dtype=np.float32)).sum(-1) * stride  # (n, 4) l t r b
            g = INPUT // stride
            cx = (sel % g + self.centre_offset) * stride
            cy = (sel // g + self.centre_offset) * stride
            b = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], 1)
            b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, nw) / sx + x0
            b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, nh) / sy + y0
            boxes.append(b)
            scores.append(cls[sel])
        if not boxes:
            return np.zeros((0, 4)), np.zeros(0)
        return np.concatenate(boxes).astype(np.float64), np.concatenate(scores).astype(np.float64)

    def windows(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """The whole image plus, per tile grid n, n x n tiles overlapping by a quarter tile."""
        out = [(0, 0, w, h)]
        for n in self.tiles:
            if n <= 1:
                continue
            tw, th = w / (n - (n - 1) * 0.25), h / (n - (n - 1) * 0.25)
            for i in range(n):
                for j in range(n):
                    x0, y0 = int(j * tw * 0.75), int(i * th * 0.75)
                    out.append((x0, y0, min(w, int(x0 + tw)), min(h, int(y0 + th))))
        return out

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (N, 4) xywh and scores (N,), best first."""
        h, w = image.shape[:2]
        parts = [self._window(image, *win) for win in self.windows(h, w)]
        boxes = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0)
        xywh = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
        ok = (xywh[:, 2] > 1) & (xywh[:, 3] > 1)
        xywh, scores = xywh[ok], scores[ok]
        keep = box_nms(xywh, scores, self.nms_iou)[: self.max_detections]
        return xywh[keep], scores[keep]


def load_detector(**options: Any) -> NanoDetDetector:
    """The NanoDet person detector (``options``: see :class:`NanoDetDetector`)."""
    return NanoDetDetector(**options)
