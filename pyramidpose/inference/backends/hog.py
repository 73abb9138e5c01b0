"""OpenCV's HOG + linear SVM pedestrian detector (Dalal-Triggs), built into OpenCV: no downloads."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pyramidpose.errors import PyramidPoseError
from pyramidpose.geometry.boxes import box_nms
from pyramidpose.inference.backends.base import downscale


class HogDetector:
    """Person boxes from OpenCV's default people detector (on images downscaled to ``max_side``)."""

    def __init__(self, max_side: int = 800, hit_threshold: float = 0.0, scale: float = 1.05) -> None:
        if not hasattr(cv2, "HOGDescriptor"):  # OpenCV 5 moved HOG out of the main modules
            raise PyramidPoseError(
                f"the HOG detector needs OpenCV's HOGDescriptor, which this OpenCV ({cv2.__version__}) does "
                "not have; use --detector nanodet (the default), or install an OpenCV build with HOG "
                "(e.g. opencv-contrib-python 4.x)"
            )
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.max_side = max_side
        self.hit_threshold = hit_threshold
        self.scale = scale

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes ``(N, 4)`` xywh and scores ``(N,)``."""
        image = np.asarray(image)
        if image.ndim != 3 or min(image.shape[:2]) < 16:
            return np.zeros((0, 4)), np.zeros(0)
        small, s = downscale(image, self.max_side)
        rects, weights = self._hog.detectMultiScale(
            small, hitThreshold=self.hit_threshold, winStride=(8, 8), padding=(8, 8), scale=self.scale
        )
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        boxes = np.asarray(rects, np.float64).reshape(-1, 4) / s
        scores = np.asarray(weights, np.float64).reshape(-1)
        keep = box_nms(boxes, scores, 0.5)
        return boxes[keep], scores[keep]


def load_detector(**options: Any) -> HogDetector:
    """The HOG detector (``options``: ``max_side``, ``hit_threshold``, ``scale``)."""
    return HogDetector(**options)
