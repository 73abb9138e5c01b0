"""SimCC coordinate classification (Li et al. ECCV 2022; RTMPose, RTMW, DWPose).

Each keypoint's x and y are classified separately over ``split_ratio`` bins per input pixel. Labels
are 1D Gaussians (``sigma`` in bins) normalised to sum 1; the loss is the KL divergence between them
and the softmax of ``beta`` times the logits (RTMPose's ``KLDiscretLoss``); decoding takes the arg-max
bin of each axis divided by ``split_ratio``, with the smaller of the two axes' softmax maxima as
score. A model's output is one tensor ``(..., K, Wb + Hb)``: the x logits then the y logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SimCCCodec:
    """Keypoints <-> SimCC labels for one model.

    Attributes:
        input_size: model input ``(H, W)``.
        split_ratio: bins per input pixel (RTMPose: 2).
        sigma: label Gaussian standard deviation in bins, ``(x, y)`` (RTMPose 256x192: 4.9, 5.66).
        beta: logit scale of the softmax in loss and scores (RTMPose: 10).
    """

    input_size: tuple[int, int] = (256, 192)
    split_ratio: float = 2.0
    sigma: tuple[float, float] = (4.9, 5.66)
    beta: float = 10.0
    udp: bool = True
    """Crop geometry of the model (maps input pixels back to the image)."""

    @property
    def bins(self) -> tuple[int, int]:
        """``(Wb, Hb)``: bins along x and y."""
        return int(round(self.input_size[1] * self.split_ratio)), int(
            round(self.input_size[0] * self.split_ratio)
        )

    def encode(
        self, keypoints: np.ndarray, visible: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels ``(..., K, Wb + Hb)`` (each axis a normalised Gaussian) and weights ``(..., K)`` (0 for
        unlabelled keypoints and those outside the input) of keypoints in input pixels."""
        kp = np.asarray(keypoints, np.float64)[..., :2] * self.split_ratio
        vis = (
            np.ones(kp.shape[:-1])
            if visible is None
            else np.asarray(visible, np.float64).reshape(kp.shape[:-1])
        )
        wb, hb = self.bins
        inside = (kp[..., 0] >= 0) & (kp[..., 0] <= wb - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= hb - 1)
        weight = ((vis > 0) & inside).astype(np.float32)
        parts = []
        for axis, n in ((0, wb), (1, hb)):
            g = np.exp(-((np.arange(n) - kp[..., axis, None]) ** 2) / (2 * self.sigma[axis] ** 2))
            parts.append(g / np.maximum(g.sum(-1, keepdims=True), 1e-12))
        labels = np.concatenate(parts, -1) * weight[..., None]
        return labels.astype(np.float32), weight

    def split(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wb, hb = self.bins
        if output.shape[-1] != wb + hb:
            raise ValueError(f"SimCC output has {output.shape[-1]} bins; this codec expects {wb} + {hb}")
        return output[..., :wb], output[..., wb:]

    def loss(self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Weighted KL(labels || softmax(beta * logits)), summed over bins, mean over both axes."""
        wb, _ = self.bins
        w = weight.float().reshape(output.shape[:-1])
        total = output.new_zeros((), dtype=torch.float32)
        for logits, labels in zip(self.split(output.float()), (target[..., :wb], target[..., wb:])):
            logp = torch.log_softmax(self.beta * logits, dim=-1)
            labels = labels.float()
            kl = (labels * (torch.log(labels.clamp_min(1e-12)) - logp)).sum(-1)
            total = total + (kl * w).sum() / w.sum().clamp_min(1.0)
        return total / 2

    def decode(self, output: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Output ``(..., K, Wb + Hb)`` -> ``coords (..., K, 2)`` in input pixels and scores ``(..., K)``."""
        out = torch.as_tensor(np.asarray(output) if not torch.is_tensor(output) else output).detach().float()
        coords, scores = [], []
        for logits in self.split(out):
            prob = torch.softmax(self.beta * logits, dim=-1)
            val, idx = prob.max(-1)
            coords.append(idx.float() / self.split_ratio)
            scores.append(val)
        return torch.stack(coords, -1).cpu().numpy(), torch.minimum(*scores).cpu().numpy()

    def to_image(self, coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, size: object = None) -> np.ndarray:
        """Input-pixel coordinates ``(N, K, 2)`` -> image pixels through crop ``centers``/``scales``."""
        from pyramidpose.geometry.crops import crop_to_image

        return crop_to_image(coords, centers, scales, self.input_size, udp=self.udp)

    def flip_back(self, output: torch.Tensor, flip_index: np.ndarray) -> torch.Tensor:
        """Un-flip outputs of mirrored crops: reverse the x bins, swap left/right keypoints."""
        x, y = self.split(output)
        out = torch.cat([x.flip(-1), y], dim=-1)
        return out[..., torch.as_tensor(np.asarray(flip_index), device=out.device), :]
