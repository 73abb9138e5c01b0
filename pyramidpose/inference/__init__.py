"""Inference: person boxes -> keypoints (``topdown.TopDownPredictor``, the one crops-to-keypoints path),
pose backends and detectors behind protocols (``backends``), the image/video pipeline (``pipeline``),
tracking and smoothing. See docs/architecture.md."""
