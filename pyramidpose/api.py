"""The one-call Python API: ``Pose()("photo.jpg")``.

:class:`Pose` wraps the whole pipeline (person detector, pose model, tracking, smoothing) behind
one object. ``model`` is a preset name (``None``: the embedded default), a zoo name from
``pyramidpose weights list`` (``"vitpose-b"``: downloaded and cached on first use) or a checkpoint
path; calling the object on a path, a PIL image, a numpy array or a list of
them gives :class:`~pyramidpose.inference.results.PoseResult` objects, and :meth:`Pose.stream`
yields tracked results frame by frame for videos, cameras (``0``) and stream URLs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pyramidpose.data.images import read_image
from pyramidpose.data.video import is_video_path, stream_kind
from pyramidpose.errors import DataError
from pyramidpose.inference.results import PoseResult
from pyramidpose.viz.draw import DrawStyle


class Frame(NamedTuple):
    """One step of :meth:`Pose.stream`."""

    index: int  # frame number in the source (gaps where frames were skipped or strided over)
    time: float  # seconds from the start
    image: np.ndarray  # RGB uint8 (H, W, 3)
    result: PoseResult  # with track_ids when tracking is on


def as_rgb(image: Any) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array from a numpy array (gray, RGB, RGBA; uint8 or floats in
    [0, 1]) or a PIL image; :class:`DataError` for anything else."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise DataError(f"expected a path, PIL image or numpy array, got {type(image).__name__}")
    arr = image
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise DataError(f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(arr)


class Pose:
    """Human pose estimation in one call.

    Args:
        model: preset name (``None``: the embedded defaults, ``accurate`` on images and ``fast`` on
            video frames), zoo name (``"vitpose-b"``), checkpoint path (official ``.pth``, Hugging
            Face folder, pyramidpose ``.safetensors``).
        detector: person detector name (default: the model's own), or any callable
            ``image -> (boxes xywh, scores)``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... (default: CUDA when available).
        track, smooth: track ids and One-Euro smoothing in :meth:`stream`.
        draw_style: overlay style of :meth:`draw` (thresholds, sizes, score labels).
        **options: further pipeline options (e.g. ``min_box_score``, ``detect_every``,
            ``vitpose_options={"flip_test": False}``).

    Example::

        pose = Pose()
        result = pose("photo.jpg")
        for frame in pose.stream("clip.mp4"):
            print(frame.index, frame.result.track_ids)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        detector: Any = None,
        device: str | None = None,
        *,
        track: bool = True,
        smooth: bool = True,
        draw_style: DrawStyle | None = None,
        **options: Any,
    ) -> None:
        from pyramidpose.inference.pipeline import Pipeline, PipelineConfig

        self.device = check_device(device)
        self.draw_style = draw_style or DrawStyle()
        fields: dict[str, Any] = dict(weights=None if model is None else str(model), device=self.device,
                                      track=track, smooth=smooth, progress=False, draw_style=self.draw_style)  # fmt: skip
        if isinstance(detector, str):
            fields["detector"] = detector
        fields.update(options)
        self.pipeline = Pipeline(PipelineConfig(**fields), detector=None if isinstance(detector, str) else detector)
        self.model = str(model) if model is not None else self.pipeline.backend.name

    def __repr__(self) -> str:
        return f"Pose(model={self.model!r}, device={self.device!r})"

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """Names of the keypoints the model predicts."""
        from pyramidpose.skeletons import get_keypoint_set

        return get_keypoint_set(self.pipeline.backend.keypoint_set).keypoints

    def __call__(self, source: Any) -> PoseResult | list[Any]:
        """Poses in ``source``: a path or PIL image or array -> one :class:`PoseResult`; a list ->
        a list of results; a video file, camera index or stream URL -> a list with one result per
        frame (use :meth:`stream` to process long videos frame by frame)."""
        if isinstance(source, (list, tuple)):
            return [self(s) for s in source]
        if isinstance(source, (str, os.PathLike, int)) and not isinstance(source, bool):
            if stream_kind(source) is not None or is_video_path(source):
                return [f.result for f in self.stream(source)]
            return self.pipeline.predict_image(read_image(Path(source)))
        return self.pipeline.predict_image(as_rgb(source))

    def stream(
        self, source: str | int | os.PathLike[str], *, stride: int = 1, max_frames: int | None = None
    ) -> Iterator[Frame]:
        """Yield :class:`Frame` ``(index, time, image, result)`` for each decoded frame of a video
        file, a camera (index ``0``) or a stream URL (``rtsp://``, ``http(s)://``...), with track
        ids (when tracking is on) that follow each person across frames."""
        if stride < 1 or (max_frames is not None and max_frames < 1):
            raise ValueError("stride and max_frames must be >= 1")
        for index, t, image, result in self.pipeline.iter_video(source, stride=stride, max_frames=max_frames):
            yield Frame(index, t, image, result)

    def draw(self, image: Any, result: PoseResult | None = None) -> np.ndarray:
        """``image`` (path, PIL image or array) with ``result`` (default: this model's prediction) drawn."""
        rgb = read_image(Path(image)) if isinstance(image, (str, os.PathLike)) else as_rgb(image)
        result = self(rgb) if result is None else result
        return result.draw(rgb, self.draw_style)  # type: ignore[union-attr]


def check_device(device: str | None) -> str | None:
    """A one-line error for a device that is not there (``cuda`` on a CPU build of torch...)."""
    if device is None:
        return None
    try:
        from pyramidpose.utils.device import resolve_device
    except ImportError:  # before utils/device existed
        resolve_device = None
    if resolve_device is not None:
        return str(resolve_device(device))
    import torch

    from pyramidpose.errors import ConfigError

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device '{device}'; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but CUDA is not available here; use cpu")
    return str(dev)
