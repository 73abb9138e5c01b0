"""2.5D head: depth read at the joint, exact reconstruction from true 2D and depths."""

from __future__ import annotations

import numpy as np
import torch

from pyramidpose.geometry.cameras import look_at, project_points
from pyramidpose.models.depth25d import Pose25D, read_depth, reconstruct


def test_read_depth_takes_the_map_where_the_heatmap_is() -> None:
    maps = torch.randn(2, 3, 8, 6)
    hm = torch.zeros(2, 3, 8, 6)
    hm[0, 1, 5, 2] = 1.0
    hm[1, 2, 0, 4] = 3.0
    hm[:, 0] = 1.0  # flat: the mean of the map
    d = read_depth(maps, hm)
    assert torch.isclose(d[0, 1], maps[0, 1, 5, 2]) and torch.isclose(d[1, 2], maps[1, 2, 0, 4])
    assert torch.allclose(d[:, 0], maps[:, 0].mean((-1, -2)))


def test_reconstruct_inverts_the_projection() -> None:
    rng = np.random.default_rng(0)
    R, t = look_at(np.array([1.0, 1.5, 5.0]), np.array([0.0, 1.0, 0.0]))
    K = np.array([[500.0, 0, 160], [0, 500.0, 150], [0, 0, 1]])
    X = rng.normal(0, 0.4, (17, 3)) + [0, 1, 0]
    uv = project_points(X, K, R, t)
    cam = X @ R.T + t
    root = cam[0, 2]
    out = reconstruct(uv, cam[:, 2] - root, K, root)
    np.testing.assert_allclose(out, cam, atol=1e-9)


def test_pose25d_outputs_heatmaps_and_depth_maps_and_trains(one_thread: None) -> None:
    from pyramidpose import create_model

    torch.manual_seed(0)
    m = Pose25D(create_model("vitpose-tiny", input_size=(64, 48), embed_dim=32, depth=2, num_heads=2,
                             head_channels=16), channels=16)  # fmt: skip
    x = torch.randn(2, 3, 64, 48)
    hm, dm = m(x)
    assert hm.shape == dm.shape == (2, 17, 16, 12)
    assert any(n.startswith("backbone.blocks.0.") for n, _ in m.named_parameters())  # layer decay sees the blocks
    target = torch.full((2, 17), 0.3)
    opt = torch.optim.Adam(m.depth_head.parameters(), 1e-2)
    first = None
    for _ in range(10):
        loss = (read_depth(m(x)[1], torch.ones(2, 17, 16, 12)) - target).abs().mean()
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
