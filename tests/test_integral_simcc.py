"""SIKR (two-step normalisation, amplitude-symmetric gradient, expectation decode) and SimCC codecs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyramidpose.codecs.integral import IntegralCodec, SymmetricIntegral, integral_coords, two_step_normalize
from pyramidpose.codecs.simcc import SimCCCodec
from pyramidpose.models.regression_heads import SimCCHead


def _gaussian_maps(mu: np.ndarray, size: tuple[int, int], sigma: float = 2.0) -> np.ndarray:
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    return np.exp(-((xs - mu[..., 0, None, None]) ** 2 + (ys - mu[..., 1, None, None]) ** 2) / (2 * sigma**2))


def test_symmetric_gradient_is_the_papers_formula() -> None:
    """dL/dp_x = A sign(x - mu) sign(mu - t) for L = |mu - t|, with A = 1/8 of the map width."""
    torch.manual_seed(0)
    w = 48
    p = torch.softmax(torch.randn(5, w, dtype=torch.float64), -1).requires_grad_(True)
    target = torch.tensor([3.0, 10.0, 24.0, 30.0, 45.0], dtype=torch.float64)
    mu = SymmetricIntegral.apply(p, w / 8)
    (mu - target).abs().sum().backward()
    x = torch.arange(w, dtype=torch.float64)
    expected = (
        (w / 8)
        * torch.where(x >= mu.detach()[:, None], 1.0, -1.0)
        * torch.sign(mu.detach() - target)[:, None]
    )
    assert torch.equal(p.grad, expected)
    # forward is the plain expectation; the exact gradient (amplitude None) is x sign(mu - t)
    assert torch.allclose(mu, (p * x).sum(-1))
    q = p.detach().clone().requires_grad_(True)
    c = integral_coords(q[:, None, :].expand(5, 4, w) / 4, amplitude_ratio=None)[..., 0]
    (c - target).abs().sum().backward()
    assert torch.allclose(q.grad, x[None] * torch.sign(mu.detach() - target)[:, None])


def test_two_step_normalisation() -> None:
    logits = torch.randn(2, 3, 8, 6)
    probs, conf = two_step_normalize(logits)
    assert torch.allclose(probs.sum((-2, -1)), torch.ones(2, 3))
    assert torch.allclose(conf, torch.sigmoid(logits).amax((-2, -1)))
    # a blob twice as large keeps its confidence (the maximum), unlike a softmax's peak value
    small = torch.full((1, 16, 16), -20.0)
    small[0, 8, 8] = 3.0
    large = small.clone()
    large[0, 6:11, 6:11] = 3.0
    assert two_step_normalize(small)[1] == pytest.approx(two_step_normalize(large)[1])


@pytest.mark.parametrize("offset", [0.0, 0.13, 0.25, 0.5, 0.71, 0.9])
def test_expectation_is_unbiased_at_sub_pixel_offsets(offset: float) -> None:
    size = (64, 48)
    mu = np.array([[20.0 + offset, 31.0 + offset / 2], [13.0 - offset, 40.0 - offset]])
    g = np.clip(_gaussian_maps(mu, size), 1e-12, 1 - 1e-7)
    logits = np.log(g / (1 - g))  # sigmoid(logits) == the Gaussian
    codec = IntegralCodec(input_size=(256, 192), heatmap_size=size)
    coords, conf = codec.decode(logits[None].astype(np.float64))
    assert np.abs(coords[0] - mu).max() < 1e-3
    assert conf.min() > 0.9


def test_integral_encode_and_loss() -> None:
    codec = IntegralCodec(input_size=(256, 192), heatmap_size=(64, 48), udp=True)
    kp = np.array([[0.0, 0.0], [191.0, 255.0], [-5.0, 10.0]])
    coords, weight = codec.encode(kp, np.array([1, 1, 1]))
    assert coords[1] == pytest.approx([47.0, 63.0]) and weight.tolist() == [1, 1, 0]
    logits = torch.zeros(1, 3, 64, 48, requires_grad=True)
    loss = codec.loss(logits, torch.as_tensor(coords)[None], torch.as_tensor(weight)[None])
    loss.backward()
    # flat maps predict the centre (23.5, 31.5); the targets are the two corners
    assert loss.item() == pytest.approx(23.5 / 48 + 31.5 / 64, rel=1e-5)
    assert logits.grad[0, 2].abs().max() == 0  # weight 0: no gradient


def test_simcc_roundtrip_and_loss_minimum() -> None:
    codec = SimCCCodec(input_size=(64, 48), split_ratio=2.0, sigma=(2.0, 2.0))
    rng = np.random.default_rng(0)
    kp = rng.uniform([2, 2], [45, 61], size=(4, 17, 2))
    labels, weight = codec.encode(kp)
    assert labels.shape == (4, 17, 96 + 128) and weight.min() == 1
    coords, scores = codec.decode(np.log(labels + 1e-9) / codec.beta)
    assert np.abs(coords - kp).max() <= 0.25 + 1e-6  # half a bin
    out = torch.log(torch.as_tensor(labels) + 1e-9) / codec.beta
    assert codec.loss(out, torch.as_tensor(labels), torch.as_tensor(weight)).item() < 1e-4
    assert codec.loss(torch.zeros_like(out), torch.as_tensor(labels), torch.as_tensor(weight)).item() > 1.0


def test_simcc_flip_back_mirrors_x_and_swaps_sides() -> None:
    from pyramidpose.skeletons import COCO

    codec = SimCCCodec(input_size=(64, 48), split_ratio=1.0, sigma=(1.0, 1.0))
    kp = np.zeros((1, 17, 2))
    kp[0, :, 0] = np.arange(17) + 5
    kp[0, :, 1] = 30
    labels, _ = codec.encode(kp)
    flipped_kp = kp.copy()
    flipped_kp[..., 0] = 47 - kp[..., 0]
    flipped_kp = flipped_kp[:, COCO.flip_index()]
    out = codec.flip_back(torch.as_tensor(codec.encode(flipped_kp)[0]), COCO.flip_index())
    assert torch.allclose(out, torch.as_tensor(labels))


def test_simcc_head_shape() -> None:
    head = SimCCHead(32, 17, (4, 3), (96, 128), hidden=16)
    assert head(torch.randn(2, 32, 4, 3)).shape == (2, 17, 224)
