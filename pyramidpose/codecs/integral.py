"""Symmetric Integral Keypoint Regression (SIKR; AlphaPose, Fang et al. TPAMI 2022, arXiv 2211.03375).

The network predicts one logit map per keypoint (any heatmap head). Decoding is an expectation:

1. two-step normalisation: ``c = sigmoid(z)`` (a confidence map: its maximum is the keypoint score,
   independent of how large the keypoint's blob is), then ``p = c / sum(c)``;
2. the coordinate is the expectation ``mu = sum_x x p_x`` of each marginal (x over columns, y over rows).

Training: L1 on the coordinates. The exact gradient of the expectation, ``d mu / d p_x = x``, grows
with the absolute position (so a keypoint on the right of the map learns with larger steps than one
on the left). SIKR replaces it by the amplitude-symmetric ``A * sign(x - mu)`` with ``A`` = 1/8 of the
map's size along that axis; with the L1 loss the gradient on ``p_x`` becomes
``A * sign(x - mu) * sign(mu - target)`` (:class:`SymmetricIntegral`).

Coordinates are in heatmap pixels of the model's output, with the UDP or MSRA input <-> heatmap
geometry of :mod:`pyramidpose.codecs.heatmap`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class SymmetricIntegral(torch.autograd.Function):
    """``mu = sum_x x p_x`` over the last axis; backward ``A * sign(x - mu)`` instead of ``x``."""

    @staticmethod
    def forward(ctx, probs: torch.Tensor, amplitude: float) -> torch.Tensor:  # type: ignore[override]
        pos = torch.arange(probs.shape[-1], dtype=probs.dtype, device=probs.device)
        mu = (probs * pos).sum(-1)
        ctx.save_for_backward(pos, mu)
        ctx.amplitude = float(amplitude)
        return mu

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        pos, mu = ctx.saved_tensors
        sign = torch.where(pos >= mu[..., None], 1.0, -1.0).to(grad.dtype)
        return grad[..., None] * ctx.amplitude * sign, None


def two_step_normalize(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logit maps ``(..., H, W)`` -> probability maps (sigmoid, then divided by the sum) and the
    confidences ``(...)`` (the sigmoid map's maximum)."""
    conf = torch.sigmoid(logits.float())
    probs = conf / conf.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return probs, conf.amax(dim=(-2, -1))


def integral_coords(probs: torch.Tensor, amplitude_ratio: float | None = 0.125) -> torch.Tensor:
    """Expected ``(x, y)`` ``(..., 2)`` in heatmap pixels of probability maps ``(..., H, W)``.

    ``amplitude_ratio`` sets SIKR's gradient amplitude ``A = ratio * size`` per axis; ``None`` keeps
    the exact gradient (plain integral regression).
    """
    h, w = probs.shape[-2:]
    px, py = probs.sum(-2), probs.sum(-1)
    if amplitude_ratio is None:
        x = (px * torch.arange(w, dtype=px.dtype, device=px.device)).sum(-1)
        y = (py * torch.arange(h, dtype=py.dtype, device=py.device)).sum(-1)
    else:
        x = SymmetricIntegral.apply(px, amplitude_ratio * w)
        y = SymmetricIntegral.apply(py, amplitude_ratio * h)
    return torch.stack([x, y], dim=-1)


@dataclass(frozen=True)
class IntegralCodec:
    """Keypoints <-> SIKR coordinate targets for one model.

    Attributes:
        input_size: model input ``(H, W)``; heatmap_size: the logit maps' ``(H, W)``.
        udp: UDP geometry (``(heatmap - 1) / (input - 1)``) or MSRA (``heatmap / input``).
        amplitude_ratio: SIKR's ``A`` as a fraction of the map size (1/8); ``None``: exact gradient.
    """

    input_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] = (64, 48)
    udp: bool = True
    amplitude_ratio: float | None = 0.125

    def _scale(self) -> np.ndarray:
        hin, win = self.input_size
        hh, hw = self.heatmap_size
        if self.udp:
            return np.array([(hw - 1) / (win - 1), (hh - 1) / (hin - 1)])
        return np.array([hw / win, hh / hin])

    def encode(
        self, keypoints: np.ndarray, visible: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Target coordinates ``(..., K, 2)`` in heatmap pixels and weights ``(..., K)`` (0 for
        unlabelled keypoints and those outside the map) of keypoints in input pixels."""
        kp = np.asarray(keypoints, np.float64)[..., :2]
        coords = kp * self._scale()
        vis = (
            np.ones(kp.shape[:-1])
            if visible is None
            else np.asarray(visible, np.float64).reshape(kp.shape[:-1])
        )
        hh, hw = self.heatmap_size
        inside = (
            (coords[..., 0] >= 0)
            & (coords[..., 0] <= hw - 1)
            & (coords[..., 1] >= 0)
            & (coords[..., 1] <= hh - 1)
        )
        return coords.astype(np.float32), ((vis > 0) & inside).astype(np.float32)

    def coords(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable ``(coords (..., K, 2), confidences (..., K))`` of logit maps ``(..., K, H, W)``."""
        probs, conf = two_step_normalize(logits)
        return integral_coords(probs, self.amplitude_ratio), conf

    def loss(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Weighted L1 between expected and target coordinates, in units of the map size."""
        pred, _ = self.coords(logits)
        size = torch.tensor(
            [self.heatmap_size[1], self.heatmap_size[0]], dtype=pred.dtype, device=pred.device
        )
        err = ((pred - target.to(pred.dtype)).abs() / size).sum(-1)
        w = weight.to(pred.dtype).reshape(err.shape)
        return (err * w).sum() / w.sum().clamp_min(1.0)

    def flip_back(self, logits: torch.Tensor, flip_index: np.ndarray) -> torch.Tensor:
        """Un-flip logit maps of mirrored crops, exactly as heatmaps (MSRA: shifted one pixel)."""
        from pyramidpose.codecs.heatmap import flip_heatmaps_back

        return flip_heatmaps_back(logits, flip_index, shift=not self.udp)

    def to_image(self, coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, size: object = None) -> np.ndarray:
        """Heatmap coordinates ``(N, K, 2)`` -> image pixels through crop ``centers``/``scales``."""
        from pyramidpose.geometry.crops import crop_to_image

        return crop_to_image(coords, centers, scales, self.heatmap_size, udp=self.udp)

    def decode(self, logits: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Logit maps ``(..., K, H, W)`` -> ``coords (..., K, 2)`` in heatmap pixels and confidences."""
        with torch.no_grad():
            coords, conf = self.coords(
                torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits)
            )
        return coords.float().cpu().numpy(), conf.float().cpu().numpy()
