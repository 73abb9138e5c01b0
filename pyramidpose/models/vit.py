"""Plain Vision Transformer backbone, laid out exactly like the official ViTPose one.

What matches the official ViTPose backbone (``mmpose/models/backbones/vit.py`` and ``vit_moe.py`` of
ViTAE-Transformer/ViTPose), so official weights load under the same parameter names:

* patch embedding: ``Conv2d(3, C, 16, stride=16, padding=2)`` (16x12 tokens at 256x192);
* a learned position embedding of shape ``(1, 1 + N, C)``. There is no class token at run time, but
  the first ("cls") slot is *added to every patch token* (``x + pos[:, 1:] + pos[:, :1]``), exactly as
  the official code does;
* pre-norm blocks with LayerNorm (eps 1e-6), fused ``qkv`` with bias, exact GELU, MLP ratio 4,
  stochastic depth (drop path) and a final ``last_norm``;
* ViTPose+ mixture-of-experts FFN: ``fc2`` produces ``C - part_features`` shared channels and each of
  ``num_experts`` per-dataset ``experts.{e}`` produce the remaining ``part_features`` channels.

Variants of the ViTPose paper (section 4.4), both off by default and both plain config fields, so a
window/overlapping model keeps the official parameter names and loads the same weights:

* **window attention** selectable per block (``attention=("window", "shifted", "global", ...)``):
  ``window`` attends inside non-overlapping ``window_size`` windows of the token grid, ``shifted``
  does so on a grid rolled by half a window with Swin-style masks (tokens that only became neighbours
  through the roll never attend to each other), ``pooled`` adds to every window's keys/values one
  average-pooled token per window (global context). A grid that does not divide into windows is
  padded, and padding is never a key (nor part of a pooled token). When the window covers the whole
  grid, ``window`` and ``shifted`` equal global attention.
* **overlapping patch embedding** (``patch_ratio=2``): the 16x16 patch kernel moves with stride
  ``16 / patch_ratio`` (padding ``4 + 2 * (patch_ratio // 2 - 1)``, as the ViTPose code), giving a
  finer token grid (stride 8 for ratio 2); the heads then upsample less to stay at stride 4.

Differences that do not change results: attention runs through
:func:`torch.nn.functional.scaled_dot_product_attention`, and inputs whose token grid differs from the
stored position grid (e.g. 384x288 or 256x256 crops with 256x192 weights) get a bicubic-resized grid
instead of an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pyramidpose.models.config import ATTENTION_KINDS, PATCH_RATIOS, VIT_PRESETS, ViTPreset  # noqa: F401 - re-exported

PATCH_SIZE = 16
PATCH_PADDING = 2


def patch_stride(patch_ratio: int = 1) -> int:
    """Stride of the patch embedding: 16 / ``patch_ratio`` (16 plain, 8 overlapping with ratio 2)."""
    if patch_ratio not in PATCH_RATIOS:
        raise ValueError(f"patch_ratio must be one of {PATCH_RATIOS}, got {patch_ratio}")
    return PATCH_SIZE // patch_ratio


def patch_padding(patch_ratio: int = 1) -> int:
    """Padding of the patch embedding (2 plain; ViTPose's ``4 + 2 * (ratio // 2 - 1)`` otherwise)."""
    return PATCH_PADDING if patch_ratio == 1 else 4 + 2 * (patch_ratio // 2 - 1)


def token_grid(input_size: tuple[int, int], patch_ratio: int = 1) -> tuple[int, int]:
    """Token grid ``(h, w)`` the padded patch embedding produces for an ``(H, W)`` input."""
    stride, padding = patch_stride(patch_ratio), patch_padding(patch_ratio)
    return tuple((s + 2 * padding - PATCH_SIZE) // stride + 1 for s in input_size)  # type: ignore[return-value]


def resize_pos_embed(pos_embed: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """Resize a ``(1, 1 + h*w, C)`` position embedding to another token grid.

    The first (cls) slot is kept as is; the patch grid is resized with bicubic interpolation
    (``align_corners=False``, as the ViTPose/ViTDet code does). Resizing to the same grid returns the
    input unchanged.
    """
    old_grid, new_grid = tuple(old_grid), tuple(new_grid)
    n = pos_embed.shape[1] - 1
    if old_grid[0] * old_grid[1] != n:
        raise ValueError(f"position embedding has {n} patch slots, not {old_grid[0]}x{old_grid[1]}")
    if old_grid == new_grid:
        return pos_embed
    cls_slot, grid = pos_embed[:, :1], pos_embed[:, 1:]
    c = grid.shape[-1]
    grid = grid.reshape(1, old_grid[0], old_grid[1], c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=new_grid, mode="bicubic", align_corners=False).to(pos_embed.dtype)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], c)
    return torch.cat([cls_slot, grid], dim=1)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``p`` (train only)."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path`; the identity in eval mode."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PatchEmbed(nn.Module):
    """16x16 patches with padding 2, as in ViTPose (``patch_embed.proj``); ``patch_ratio`` > 1 makes
    them overlap (stride ``16 / patch_ratio``)."""

    def __init__(self, embed_dim: int, in_chans: int = 3, patch_ratio: int = 1) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_chans, embed_dim, PATCH_SIZE, stride=patch_stride(patch_ratio), padding=patch_padding(patch_ratio)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        # A channels-last conv output flattens into contiguous [B, N, C] tokens for free. (Plain
        # NCHW would give transposed strides that every later add and LayerNorm inherit or copy.)
        x = self.proj(x.contiguous(memory_format=torch.channels_last))
        h, w = x.shape[-2:]
        return x.flatten(2).transpose(1, 2).contiguous(), (h, w)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and SDPA.

    ``kind`` is ``global`` (every token attends to every token) or one of the window kinds
    (``window``, ``shifted``, ``pooled``; see the module docstring); window kinds need the token grid,
    so :meth:`forward` takes ``grid=(h, w)``. The kind changes no parameter: a window model loads
    global weights and the reverse.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        kind: str = "global",
        window_size: tuple[int, int] = (8, 6),
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention {kind!r}; expected one of {ATTENTION_KINDS}")
        if len(window_size) != 2 or min(window_size) < 1:
            raise ValueError(f"window_size must be two positive token counts (h, w), got {window_size}")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.kind = kind
        self.window_size = (int(window_size[0]), int(window_size[1]))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def extra_repr(self) -> str:
        return f"kind={self.kind}" + ("" if self.kind == "global" else f", window_size={self.window_size}")

    def forward(self, x: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        if self.kind == "global":
            return self._global(x)
        if grid is None:
            raise ValueError(f"{self.kind} attention needs the token grid (h, w)")
        return self._windowed(x, grid)

    def _global(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))

    def _windowed(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        h, w = grid
        if h * w != n:
            raise ValueError(f"{n} tokens do not form a {h}x{w} grid")
        layout = window_layout((h, w), self.window_size, shifted=self.kind == "shifted", device=x.device)
        (wh, ww), (ph, pw), shift, valid, mask = layout
        hp, wp = h + ph, w + pw
        heads, d = self.num_heads, c // self.num_heads
        m = wh * ww
        nwin = (hp // wh) * (wp // ww)
        xs = x.view(b, h, w, c)
        if ph or pw:
            xs = F.pad(xs, (0, 0, 0, pw, 0, ph))
        if shift != (0, 0):
            xs = torch.roll(xs, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        win = _partition(xs, wh, ww)  # [B, nW, M, C]
        qkv = self.qkv(win).view(b, nwin, m, 3, heads, d).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.unbind(0)  # [B, nW, heads, M, d]
        if self.kind == "pooled":
            # one context token per window: the mean of its real (non-padding) tokens
            weights = valid.to(win.dtype)  # [nW, M]
            pooled = (win * weights[None, :, :, None]).sum(2) / weights.sum(1)[None, :, None]
            pkv = self.qkv(pooled).view(b, nwin, 3, heads, d)[:, :, 1:].permute(2, 0, 3, 1, 4)
            pk, pv = (t.unsqueeze(1).expand(b, nwin, heads, nwin, d) for t in pkv.unbind(0))
            k, v = torch.cat([k, pk], dim=3), torch.cat([v, pv], dim=3)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(mask.shape[:-1] + (nwin,))], dim=-1)
        if mask is not None:
            mask = mask.unsqueeze(1)  # [nW, 1, M, keys] broadcast over batch and heads
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0
        )  # [B, nW, heads, M, d]
        out = self.proj(out.transpose(2, 3).reshape(b, nwin, m, c))
        out = _merge(out, hp, wp, wh, ww)
        if shift != (0, 0):
            out = torch.roll(out, shifts=shift, dims=(1, 2))
        return out[:, :h, :w].reshape(b, n, c)


def _partition(x: torch.Tensor, wh: int, ww: int) -> torch.Tensor:
    """``[B, Hp, Wp, C]`` -> ``[B, nW, wh*ww, C]`` (windows in row-major order)."""
    b, hp, wp, c = x.shape
    x = x.view(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (hp // wh) * (wp // ww), wh * ww, c)


def _merge(x: torch.Tensor, hp: int, wp: int, wh: int, ww: int) -> torch.Tensor:
    """Inverse of :func:`_partition`: ``[B, nW, wh*ww, C]`` -> ``[B, Hp, Wp, C]``."""
    b, _, _, c = x.shape
    x = x.view(b, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, c)


def window_layout(
    grid: tuple[int, int], window_size: tuple[int, int], *, shifted: bool = False, device: torch.device | None = None
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], torch.Tensor, torch.Tensor | None]:
    """How a token grid is cut into windows: ``(window, padding, shift, valid, mask)``.

    The window is clipped to the grid; the grid is padded (bottom/right) to whole windows. A shifted
    layout rolls the padded grid by half a window (no shift when one window covers an axis).
    ``valid`` ``[nW, M]`` marks real tokens in each window (after the roll). ``mask`` ``[nW, M, M]``
    (``True`` = may attend) lets a query see only real keys of its own Swin region; a padding query
    sees itself only (its output is dropped). ``mask`` is ``None`` when every key is allowed.
    """
    h, w = grid
    wh, ww = min(window_size[0], h), min(window_size[1], w)
    ph, pw = (-h) % wh, (-w) % ww
    hp, wp = h + ph, w + pw
    shift = (wh // 2 if shifted and wh < h else 0, ww // 2 if shifted and ww < w else 0)
    real = torch.zeros(hp, wp, dtype=torch.bool, device=device)
    real[:h, :w] = True
    region = torch.zeros(hp, wp, dtype=torch.long, device=device)
    if shift != (0, 0):
        real = torch.roll(real, shifts=(-shift[0], -shift[1]), dims=(0, 1))
        # Swin regions of the rolled grid: the last window row/column mixes wrapped-around tokens
        rows = (slice(0, hp - wh), slice(hp - wh, hp - shift[0]), slice(hp - shift[0], hp))
        cols = (slice(0, wp - ww), slice(wp - ww, wp - shift[1]), slice(wp - shift[1], wp))
        label = 0
        for r in rows:
            for cc in cols:
                region[r, cc] = label
                label += 1
    valid = _partition(real[None, :, :, None], wh, ww)[0, :, :, 0]  # [nW, M]
    if bool(valid.all()) and shift == (0, 0):
        return (wh, ww), (ph, pw), shift, valid, None
    reg = _partition(region[None, :, :, None], wh, ww)[0, :, :, 0]
    mask = (reg[:, :, None] == reg[:, None, :]) & valid[:, None, :] & valid[:, :, None]
    eye = torch.eye(wh * ww, dtype=torch.bool, device=device)
    mask = mask | (eye & ~valid[:, :, None])
    return (wh, ww), (ph, pw), shift, valid, mask


class Mlp(nn.Module):
    """Two-layer FFN with exact GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, dataset_index: int | torch.Tensor | None = None) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MoEMlp(nn.Module):
    """ViTPose+ FFN: shared ``fc2`` for ``dim - part_features`` channels plus one expert per dataset.

    ``dataset_index`` is an ``int`` (the same expert for the whole batch: one matmul) or a ``[B]``
    tensor (a per-sample expert, as in ViTPose+ multi-dataset training).
    """

    def __init__(self, dim: int, hidden: int, num_experts: int, part_features: int) -> None:
        super().__init__()
        if not 0 < part_features < dim:
            raise ValueError(f"part_features must be in (0, {dim}), got {part_features}")
        self.part_features = part_features
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim - part_features)
        self.experts = nn.ModuleList(nn.Linear(hidden, part_features) for _ in range(num_experts))

    def forward(self, x: torch.Tensor, dataset_index: int | torch.Tensor | None = None) -> torch.Tensor:
        if dataset_index is None:
            dataset_index = 0
        x = self.act(self.fc1(x))
        shared = self.fc2(x)
        if isinstance(dataset_index, int):
            if not 0 <= dataset_index < len(self.experts):
                raise ValueError(f"dataset index {dataset_index} out of range for {len(self.experts)} experts")
            part = self.experts[dataset_index](x)
        else:
            idx = dataset_index.to(x.device).view(-1, 1, 1)
            part = x.new_zeros(x.shape[:-1] + (self.part_features,))
            for e, expert in enumerate(self.experts):
                part = part + expert(x) * (idx == e)
        return torch.cat([shared, part], dim=-1)


class Block(nn.Module):
    """Pre-norm transformer block (``norm1``, ``attn``, ``norm2``, ``mlp``) with drop path."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        ln_eps: float = 1e-6,
        num_experts: int = 1,
        part_features: int = 0,
        attention: str = "global",
        window_size: tuple[int, int] = (8, 6),
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, kind=attention, window_size=window_size)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = MoEMlp(dim, hidden, num_experts, part_features) if num_experts > 1 else Mlp(dim, hidden)

    def forward(
        self, x: torch.Tensor, dataset_index: int | torch.Tensor | None = None, grid: tuple[int, int] | None = None
    ) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), grid))
        return x + self.drop_path(self.mlp(self.norm2(x), dataset_index))


class ViT(nn.Module):
    """ViTPose backbone: ``forward(x) -> [B, C, H/s, W/s]``, the final LayerNorm'ed feature map
    (``s`` = :attr:`stride`: 16, or 8/4 with overlapping patches).

    Feature maps are returned as channels-last strided views of the token sequence (no copy); call
    ``.contiguous()`` before ``.view()`` if you need NCHW memory.

    Args:
        embed_dim, depth, num_heads: size (see :data:`VIT_PRESETS`).
        input_size: ``(H, W)`` the position grid is stored for; other sizes are resized on the fly.
        mlp_ratio: FFN hidden width over ``embed_dim``.
        drop_path: stochastic depth of the last block (linearly increasing from 0 in block 0).
        ln_eps: LayerNorm epsilon (ViTPose: 1e-6).
        num_experts, part_features: ViTPose+ MoE FFN (``num_experts=1``: plain FFN).
        dataset_index: expert used when :meth:`forward` gets none (COCO=0, AIC=1, MPII=2,
            AP-10K=3, APT-36K=4, COCO-WholeBody=5 for the official ViTPose+ models).
        attention: attention kind of each block (``global``, ``window``, ``shifted``, ``pooled``);
            empty = all global (plain ViTPose).
        window_size: window ``(h, w)`` in tokens for the window kinds.
        patch_ratio: 1 = plain 16x16 patches; 2 or 4 = overlapping patches with stride 8 or 4.
        knowledge_token: append one learned token (``knowledge_token``, ``[1, 1, C]``) to the patch
            tokens in every block (ViTPose's token distillation); dropped before the feature map.

    Parameter names match the official checkpoints: ``patch_embed.proj``, ``pos_embed``,
    ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2,mlp.experts.{e}}``, ``last_norm``.
    """

    def __init__(
        self,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        input_size: tuple[int, int] = (256, 192),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        ln_eps: float = 1e-6,
        num_experts: int = 1,
        part_features: int = 0,
        dataset_index: int = 0,
        attention: Sequence[str] = (),
        window_size: tuple[int, int] = (8, 6),
        patch_ratio: int = 1,
        knowledge_token: bool = False,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.depth = depth
        self.num_experts = num_experts
        self.dataset_index = dataset_index
        self.patch_ratio = int(patch_ratio)
        self.stride = patch_stride(self.patch_ratio)
        kinds = tuple(attention) or ("global",) * depth
        if len(kinds) != depth:
            raise ValueError(f"attention lists {len(kinds)} block kinds for a {depth}-block backbone")
        if knowledge_token and set(kinds) != {"global"}:
            raise ValueError("a knowledge token needs global attention in every block")
        self.grid = token_grid(tuple(input_size), self.patch_ratio)
        self.patch_embed = PatchEmbed(embed_dim, patch_ratio=self.patch_ratio)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        self.knowledge_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if knowledge_token else None
        # stochastic depth grows linearly from 0 (first block) to drop_path (last block)
        rates = [drop_path * i / (depth - 1) for i in range(depth)] if depth > 1 else [drop_path]
        self.blocks = nn.ModuleList(
            Block(
                embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i], ln_eps, num_experts, part_features,
                kinds[i], window_size,
            )
            for i in range(depth)
        )
        self.last_norm = nn.LayerNorm(embed_dim, eps=ln_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal(0.02) linears and position embedding, unit LayerNorms (as ViTPose)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.knowledge_token is not None:
            nn.init.trunc_normal_(self.knowledge_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        pos = self.pos_embed
        if grid != self.grid:
            pos = resize_pos_embed(pos, self.grid, grid)
        # The official code adds the cls slot to every patch token (it never drops it).
        return pos[:, 1:] + pos[:, :1]

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a [B, 3, H, W] batch, got shape {tuple(x.shape)}")
        tokens, grid = self.patch_embed(x)
        tokens = tokens + self._pos_embed_for(grid).to(tokens.dtype)
        if self.knowledge_token is not None:  # appended last; the map keeps the first h*w tokens
            tokens = torch.cat([tokens, self.knowledge_token.to(tokens.dtype).expand(tokens.shape[0], -1, -1)], 1)
        return tokens, grid

    def forward(self, x: torch.Tensor, dataset_index: int | torch.Tensor | None = None) -> torch.Tensor:
        """``[B, 3, H, W]`` -> final normalised feature map ``[B, C, h, w]`` (``h, w`` = token grid)."""
        ds = self.dataset_index if dataset_index is None else dataset_index
        tokens, (h, w) = self._embed(x)
        for blk in self.blocks:
            tokens = blk(tokens, ds, (h, w))
        return _to_map(self.last_norm(tokens[:, : h * w]), h, w)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Sequence[int],
        *,
        norm: bool = False,
        dataset_index: int | torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Outputs of the given blocks as ``[B, C, h, w]`` maps, in the order of ``indices``.

        ``indices`` are 0-based block numbers (negative ones count from the end: ``-1`` is the last
        block). Blocks after the deepest requested one are not run. ``norm=True`` applies
        ``last_norm`` to every returned map, so ``forward_intermediates(x, [-1], norm=True)[0]``
        equals ``forward(x)``. Used by the feature-pyramid necks.
        """
        idx = [i + self.depth if i < 0 else i for i in indices]
        bad = [i for i, j in zip(indices, idx) if not 0 <= j < self.depth]
        if bad:
            raise ValueError(f"block indices {bad} out of range for a {self.depth}-block backbone")
        ds = self.dataset_index if dataset_index is None else dataset_index
        tokens, (h, w) = self._embed(x)
        wanted = set(idx)
        found: dict[int, torch.Tensor] = {}
        for i, blk in enumerate(self.blocks[: max(idx) + 1] if idx else []):
            tokens = blk(tokens, ds, (h, w))
            if i in wanted:
                out = tokens[:, : h * w]
                found[i] = _to_map(self.last_norm(out) if norm else out, h, w)
        return [found[i] for i in idx]

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]


def _to_map(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``[B, h*w, C]`` tokens -> ``[B, C, h, w]`` map without a copy (a channels-last strided view).

    The token sequence already is NHWC memory, which is what the oneDNN convolutions of the heads
    and necks prefer; the values equal the official ``permute + reshape + contiguous``.
    """
    return tokens.reshape(tokens.shape[0], h, w, tokens.shape[-1]).permute(0, 3, 1, 2)


def grid_from_num_patches(n: int) -> tuple[int, int]:
    """Guess the token grid of an ``n``-slot position embedding: 4:3 portrait (ViTPose) or square."""
    h = round(math.sqrt(n * 4 / 3))
    if h > 0 and n % h == 0 and h * 3 == (n // h) * 4:
        return h, n // h
    s = round(math.sqrt(n))
    if s * s == n:
        return s, s
    raise ValueError(f"cannot tell the token grid of a {n}-slot position embedding; give input_size")
