"""Window attention of the ViT backbone against brute-force references (global attention + masks)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pyramidpose.models.vit import Attention, window_layout


def _pair(kind: str, window: tuple[int, int], dim: int = 32, heads: int = 4) -> tuple[Attention, Attention]:
    torch.manual_seed(0)
    ref = Attention(dim, heads).eval()
    win = Attention(dim, heads, kind=kind, window_size=window).eval()
    win.load_state_dict(ref.state_dict())  # the kind changes no parameter
    return ref, win


def _masked_reference(att: Attention, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Global attention of ``att`` restricted to ``allowed[q, k]`` (True = may attend)."""
    b, n, c = x.shape
    qkv = att.qkv(x).view(b, n, 3, att.num_heads, c // att.num_heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(*qkv.unbind(0), attn_mask=allowed)
    return att.proj(out.transpose(1, 2).reshape(b, n, c))


def _groups(size: int, window: int, shift: int) -> torch.Tensor:
    """Window index of each row (or column) of the *unpadded* grid: windows start at ``shift``,
    the rows before it form their own group (what a cyclic shift + Swin mask amounts to)."""
    return torch.div(torch.arange(size) - shift, window, rounding_mode="floor")


@pytest.mark.parametrize("kind", ["window", "shifted"])
@pytest.mark.parametrize("window", [(16, 12), (40, 40)])
def test_window_covering_the_grid_equals_global_attention(kind: str, window: tuple[int, int]) -> None:
    ref, win = _pair(kind, window)
    x = torch.randn(2, 16 * 12, 32)
    with torch.no_grad():
        torch.testing.assert_close(win(x, (16, 12)), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "grid,window,kind",
    [((16, 12), (8, 6), "window"), ((5, 7), (4, 4), "window"), ((16, 12), (8, 6), "shifted"),
     ((13, 9), (4, 4), "shifted"), ((7, 5), (4, 4), "shifted")],
)  # fmt: skip
def test_window_attention_matches_a_masked_global_reference(grid, window, kind) -> None:
    """Each real token attends exactly to the real tokens of its (possibly shifted) window: padding
    is never a key, and tokens that only meet through the cyclic roll never see each other."""
    ref, win = _pair(kind, window)
    h, w = grid
    x = torch.randn(2, h * w, 32)
    wh, ww = min(window[0], h), min(window[1], w)
    sh, sw = (wh // 2 if wh < h else 0, ww // 2 if ww < w else 0) if kind == "shifted" else (0, 0)
    gr = _groups(h, wh, sh)[:, None].expand(h, w).reshape(-1)
    gc = _groups(w, ww, sw)[None, :].expand(h, w).reshape(-1)
    allowed = (gr[:, None] == gr[None, :]) & (gc[:, None] == gc[None, :])
    with torch.no_grad():
        torch.testing.assert_close(win(x, grid), _masked_reference(ref, x, allowed), rtol=1e-5, atol=1e-5)


def test_pooled_windows_add_one_mean_token_per_window_as_key() -> None:
    """Pooled attention: keys/values are the window's real tokens plus, for every window, the mean
    of its real tokens (padding counted nowhere)."""
    grid, window = (5, 7), (4, 4)
    ref, win = _pair("pooled", window)
    h, w = grid
    x = torch.randn(1, h * w, 32)
    gr = _groups(h, 4, 0)[:, None].expand(h, w).reshape(-1)
    gc = _groups(w, 4, 0)[None, :].expand(h, w).reshape(-1)
    gid = gr * 10 + gc
    ids = sorted(set(gid.tolist()))
    means = torch.stack([x[0, gid == i].mean(0) for i in ids])[None]  # [1, nW, C]
    c, heads = 32, 4
    qkv = ref.qkv(x).view(1, h * w, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    pkv = ref.qkv(means).view(1, len(ids), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q = qkv[0]
    k = torch.cat([qkv[1], pkv[1]], dim=2)
    v = torch.cat([qkv[2], pkv[2]], dim=2)
    allowed = torch.cat([gid[:, None] == gid[None, :], torch.ones(h * w, len(ids), dtype=torch.bool)], dim=1)
    expect = ref.proj(F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).transpose(1, 2).reshape(1, -1, c))
    with torch.no_grad():
        torch.testing.assert_close(win(x, grid), expect, rtol=1e-5, atol=1e-5)


def test_layout_has_no_mask_when_windows_tile_the_grid_and_masks_padding_otherwise() -> None:
    assert window_layout((16, 12), (8, 6))[-1] is None
    (wh, ww), pad, shift, valid, mask = window_layout((5, 7), (4, 4))
    assert (wh, ww) == (4, 4) and pad == (3, 1) and shift == (0, 0)
    assert int(valid.sum()) == 35 and mask is not None
    assert not (mask & valid[:, :, None] & ~valid[:, None, :]).any()  # no real query sees a padding key ...
    eye = torch.eye(16, dtype=torch.bool)
    assert (mask[~valid] == eye[None].expand(4, 16, 16)[~valid]).all()  # ... padding queries see themselves


def test_window_kinds_need_the_grid_and_reject_bad_settings() -> None:
    with pytest.raises(ValueError, match="grid"):
        Attention(32, 4, kind="window")(torch.randn(1, 12, 32))
    with pytest.raises(ValueError, match="unknown attention"):
        Attention(32, 4, kind="swin")
    with pytest.raises(ValueError, match="do not form"):
        Attention(32, 4, kind="window")(torch.randn(1, 12, 32), (5, 5))
