"""Optional converter to the ``supervision`` library's :class:`KeyPoints` (``pip install
'pyramidpose[supervision]'``), so its annotators, trackers and zone tools work on our results."""

from __future__ import annotations

from typing import Any

import numpy as np

from pyramidpose.errors import MissingDependencyError


def to_supervision(result: Any) -> Any:
    """A :class:`~pyramidpose.inference.results.PoseResult` as ``supervision.KeyPoints``.

    ``xy`` is ``(N, K, 2)`` float32 image pixels, ``confidence`` the ``(N, K)`` keypoint scores,
    ``class_id`` 0 (person) for every row; ``data`` holds the instance ``score``, the ``bbox``
    (``xyxy``) and, when tracked, ``track_id``.
    """
    try:
        import supervision as sv
    except ImportError:
        raise MissingDependencyError("supervision", "supervision", "to_supervision()") from None
    n = len(result)
    boxes = np.asarray(result.bboxes, np.float32).reshape(n, 4)
    data: dict[str, np.ndarray] = {
        "score": np.asarray(result.scores, np.float32).reshape(n),
        "bbox": np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1),
    }
    if getattr(result, "track_ids", None) is not None:
        data["track_id"] = np.asarray(result.track_ids, np.int64).reshape(n)
    return sv.KeyPoints(
        xy=np.asarray(result.keypoints, np.float32).reshape(n, -1, 2),
        confidence=np.asarray(result.keypoint_scores, np.float32).reshape(n, -1),
        class_id=np.zeros(n, np.int64),
        data=data,
    )
