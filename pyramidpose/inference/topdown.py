"""Top-down pose estimation: person boxes -> crops -> heatmaps -> keypoints in image pixels.

:class:`TopDownPredictor` wraps any heatmap model (``forward(x [B, 3, H, W]) -> [B, K, H/4, W/4]``,
ImageNet-normalised input) and implements ViTPose's test recipe by default: UDP crops, flip test
(no heatmap shift under UDP), DARK-UDP decoding (blur kernel 11), keypoint scores = heatmap maxima,
instance score = box score x mean keypoint score above 0.2. Crops from several images are batched
together by :meth:`TopDownPredictor.predict_many`.
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pyramidpose.codecs.heatmap import HeatmapCodec
from pyramidpose.data.transforms import normalize_crops
from pyramidpose.errors import ConfigError, DataError
from pyramidpose.geometry.boxes import clip_boxes
from pyramidpose.geometry.crops import box_to_center_scale
from pyramidpose.inference.results import PoseResult, rescore
from pyramidpose.skeletons import KeypointSet, get_keypoint_set
from pyramidpose.utils.device import (
    Precision,
    autocast_context,
    choose_precision,
    low_precision_copy,
    resolve_device,
)

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check an image array is ``(H, W, 3)`` uint8 (a gray ``(H, W)`` image is expanded)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"expected an RGB image of shape (H, W, 3), got {img.shape}")
    if img.dtype != np.uint8:
        raise DataError(f"expected a uint8 image, got {img.dtype} (read files with pyramidpose.data.images)")
    return img


@dataclass
class _Pending:
    """Crops of one image waiting for the network."""

    tag: Any
    crops: np.ndarray
    centers: np.ndarray
    scales: np.ndarray
    bboxes: np.ndarray
    box_scores: np.ndarray
    box_indices: np.ndarray
    skipped: int
    heatmaps: list[np.ndarray | None]
    done: int = 0


class TopDownPredictor:
    """Predict keypoints of people given their boxes.

    This is the only code that turns crops into keypoints: ``pyramidpose predict``, the pipeline's
    ViTPose backend and training validation (:mod:`pyramidpose.training.validation`) all call it.

    Args:
        model: heatmap network in eval mode. Its ``config`` (if any) supplies the codec
            (:meth:`HeatmapCodec.from_config`), ``keypoint_set`` and ``num_keypoints``.
        codec: crop geometry, heatmap decoding and flip handling (default: the model config's codec
            with DARK refinement; ``HeatmapCodec.from_config(cfg, method="msra")`` etc. for others).
            Required when the model has no ``config``.
        device: where to run (default: the model's device). The model is moved there.
        flip_test: average with the un-flipped heatmaps of the mirrored crop.
        batch_size: crops per forward pass (a flip test doubles the pass).
        precision: ``"auto"`` (bf16 where the hardware has it natively, else fp32; see
            :func:`pyramidpose.utils.device.choose_precision`), ``"fp32"``, ``"bf16"`` or ``"fp16"``
            (CUDA). Chosen once here; :attr:`precision` is the resolved choice.
        keypoint_set: layout name (default from the model config, else COCO when K = 17).
        padding: box padding (1.25).
        heatmap_sr: optional decoder stage between the network and the decoding: a heatmap
            super-resolution module (:class:`pyramidpose.models.heatmap_sr.HeatmapSR`) applied to the
            (flip-averaged) heatmaps, e.g. stride-16 maps to stride 4; its geometry must be the codec's.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        codec: HeatmapCodec | None = None,
        device: str | torch.device | None = None,
        flip_test: bool = True,
        batch_size: int = 32,
        precision: str = "auto",
        keypoint_set: str | KeypointSet | None = None,
        padding: float = 1.25,
        heatmap_sr: nn.Module | None = None,
        target_codec: Any = None,
    ) -> None:
        cfg = getattr(model, "config", None)
        if target_codec is None and getattr(cfg, "target", "heatmap") != "heatmap":
            from pyramidpose.codecs.coordinates import coordinate_codec

            target_codec = coordinate_codec(cfg.target, cfg.input_size, getattr(cfg, "codec", "udp") == "udp")
        # SIKR / SimCC models (codecs.coordinates): their codec decodes, un-flips and maps to the image;
        # the heatmap codec still sets the crop geometry
        self.target_codec = target_codec
        if codec is None:
            if getattr(cfg, "input_size", None) is None:
                raise ConfigError("TopDownPredictor: the model has no config.input_size; pass codec=HeatmapCodec(...)")
            codec = HeatmapCodec.from_config(cfg)
        self.codec = codec
        self.input_size = codec.input_size  # (H, W)
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.flip_test = bool(flip_test)
        self.padding = float(padding)

        if isinstance(keypoint_set, KeypointSet):
            ks: KeypointSet | None = keypoint_set
        elif keypoint_set is not None:
            ks = get_keypoint_set(keypoint_set)
        elif getattr(cfg, "keypoint_set", None) not in (None, "", "none"):
            try:
                ks = get_keypoint_set(cfg.keypoint_set)
            except KeyError as e:
                raise ConfigError(f"the model's keypoint set is unknown ({e}); pass keypoint_set=") from None
        else:
            ks = get_keypoint_set("coco") if getattr(cfg, "num_keypoints", 17) == 17 else None
        k_model = getattr(cfg, "num_keypoints", None)
        if ks is not None and k_model is not None and ks.num_keypoints != k_model:
            raise ConfigError(
                f"keypoint set '{ks.name}' has {ks.num_keypoints} keypoints but the model predicts {k_model}"
            )
        if ks is None and self.flip_test:
            raise ConfigError(
                "the model's keypoint layout is unknown and the flip test needs its flip pairs: pass "
                "keypoint_set= (see pyramidpose.skeletons) or flip_test=False"
            )
        self.keypoint_set = ks
        trained = getattr(cfg, "codec", None)
        if trained in ("udp", "msra") and (trained == "udp") != codec.udp:
            warnings.warn(
                f"model was trained with the {trained.upper()} codec but decoding uses the "
                f"{'UDP' if codec.udp else 'MSRA'} geometry ({codec.method}); keypoints will be slightly off",
                stacklevel=2,
            )

        if device is None:
            p = next(iter(model.parameters()), None)
            device = p.device if p is not None else "cpu"
        self.device = resolve_device(device)  # an unknown or absent device is a one-line ConfigError
        exported = getattr(model, "exported_precision", None)  # an ONNX file runs in its own precision
        if exported is None:
            self.precision: Precision = choose_precision(precision, self.device)
        elif precision in ("auto", "fp32", exported):
            self.precision = Precision("fp32", self.device.type, f"exported model: onnxruntime runs it in {exported}")
        else:
            raise ConfigError(f"precision {precision}: this exported model runs in {exported}; export it with "
                              "--fp16 for half precision, or leave the precision at auto")  # fmt: skip
        log.info("pose model: %s", self.precision)
        model = model.to(self.device).eval()
        # under bf16/fp16 the Linear/Conv weights are cast once here, not by autocast on every call
        self.model = low_precision_copy(model, self.precision) if self.device.type == "cpu" else model
        self._flip_index = None if ks is None else ks.flip_index()
        sr_udp = getattr(getattr(heatmap_sr, "config", None), "udp", codec.udp)
        if heatmap_sr is not None and sr_udp != codec.udp:
            raise ConfigError(
                f"the heatmap SR stage was trained for the {'UDP' if sr_udp else 'MSRA'} geometry but the codec "
                f"decodes {codec.method}; use a matching SR model or --decode"
            )
        self.heatmap_sr = None if heatmap_sr is None else heatmap_sr.to(self.device).eval()

    # ------------------------------------------------------------------ network

    @torch.inference_mode()
    def heatmaps(self, batch: torch.Tensor | np.ndarray) -> np.ndarray:
        """Heatmaps ``(B, K, h, w)`` float32 for a normalised batch ``(B, 3, H, W)``, flip test included."""
        x = torch.as_tensor(batch).to(self.device, torch.float32)
        if self.flip_test:
            x = torch.cat([x, x.flip(-1)], dim=0)
        with autocast_context(self.precision):
            out = self.model(x)
        out = out.float()
        if self.flip_test:
            n = out.shape[0] // 2
            back = (self.target_codec or self.codec).flip_back(out[n:], self._flip_index)
            out = (out[:n] + back) * 0.5
        if self.heatmap_sr is not None:  # optional decoder stage: super-resolved heatmaps are decoded
            out = self.heatmap_sr(out).float()
        return out.cpu().numpy()

    # ------------------------------------------------------------------ crops

    def _prepare(self, image: np.ndarray, boxes: Any, box_scores: Any, tag: Any) -> _Pending:
        img = as_rgb_uint8(image)
        h_img, w_img = img.shape[:2]
        b = np.asarray(boxes if boxes is not None else np.zeros((0, 4)), dtype=np.float64).reshape(-1, 4)
        s = np.ones(len(b)) if box_scores is None else np.asarray(box_scores, dtype=np.float64).reshape(-1)
        if len(s) != len(b):
            raise DataError(f"{len(b)} boxes but {len(s)} box scores")
        clipped, valid = clip_boxes(b, w_img, h_img)
        skipped = int((~valid).sum())
        if skipped:
            warnings.warn(f"skipped {skipped} zero-area box(es) (after clipping to the image)", stacklevel=3)
        keep = np.flatnonzero(valid)
        h_in, w_in = self.input_size
        centers, scales = box_to_center_scale(clipped[keep], w_in / h_in, self.padding)
        crops = np.zeros((len(keep), h_in, w_in, 3), np.uint8)
        for i in range(len(keep)):
            crops[i] = self.codec.crop(img, centers[i], scales[i])
        return _Pending(
            tag=tag, crops=crops, centers=centers, scales=scales, bboxes=clipped[keep],
            box_scores=s[keep], box_indices=keep, skipped=skipped, heatmaps=[None] * len(keep),
        )  # fmt: skip

    def _finish(self, p: _Pending) -> PoseResult:
        name = self.keypoint_set.name if self.keypoint_set is not None else "none"
        if not p.heatmaps:
            k = self.keypoint_set.num_keypoints if self.keypoint_set is not None else 0
            return PoseResult.empty(k, name, p.skipped)
        hm = np.stack(p.heatmaps)
        dec = self.target_codec or self.codec
        coords, maxvals = dec.decode(hm)
        kps = dec.to_image(coords, p.centers, p.scales, hm.shape[-2:])
        return PoseResult(
            keypoints=kps.astype(np.float32),
            keypoint_scores=maxvals.astype(np.float32),
            bboxes=p.bboxes.astype(np.float32),
            box_scores=p.box_scores.astype(np.float32),
            scores=rescore(p.box_scores, maxvals),
            keypoint_set=name,
            box_indices=p.box_indices,
            num_skipped_boxes=p.skipped,
            areas=p.scales.prod(axis=1),
        )

    # ------------------------------------------------------------------ public API

    def predict(self, image: np.ndarray, boxes: Any, box_scores: Any = None) -> PoseResult:
        """Poses for the ``xywh`` ``boxes (N, 4)`` in one RGB uint8 ``image (H, W, 3)``.

        ``box_scores (N,)`` default to 1. Boxes are clipped to the image; zero-area boxes are skipped
        with a warning and counted in ``PoseResult.num_skipped_boxes``.
        """
        return next(iter(self.predict_many([(image, boxes, box_scores)])))

    def predict_many(self, items: Iterable[tuple[np.ndarray, Any, Any]]) -> Iterator[PoseResult]:
        """Lazily yield one :class:`PoseResult` per ``(image, boxes, box_scores)`` item, in order.

        Crops of consecutive images share forward passes of ``batch_size`` crops.
        """
        for _, result in self._run((None, *item) for item in items):
            yield result

    def predict_tagged(self, items: Iterable[tuple[Any, np.ndarray, Any, Any]]) -> Iterator[tuple[Any, PoseResult]]:
        """Like :meth:`predict_many` for ``(tag, image, boxes, scores)`` items; yields ``(tag, result)``."""
        yield from self._run(items)

    def _run(self, items: Iterable[tuple[Any, np.ndarray, Any, Any]]) -> Iterator[tuple[Any, PoseResult]]:
        pending: deque[_Pending] = deque()
        queue: deque[tuple[_Pending, int]] = deque()

        def run_batch(n: int) -> None:
            chunk = [queue.popleft() for _ in range(n)]
            crops = np.stack([p.crops[i] for p, i in chunk])
            hm = self.heatmaps(torch.from_numpy(normalize_crops(crops)))
            for (p, i), h in zip(chunk, hm):
                p.heatmaps[i] = h
                p.done += 1

        def ready() -> Iterator[tuple[Any, PoseResult]]:
            while pending and pending[0].done == len(pending[0].heatmaps):
                p = pending.popleft()
                yield p.tag, self._finish(p)

        for tag, image, boxes, scores in items:
            p = self._prepare(image, boxes, scores, tag)
            pending.append(p)
            queue.extend((p, i) for i in range(len(p.heatmaps)))
            while len(queue) >= self.batch_size:
                run_batch(self.batch_size)
            yield from ready()
        while queue:
            run_batch(min(self.batch_size, len(queue)))
        yield from ready()
