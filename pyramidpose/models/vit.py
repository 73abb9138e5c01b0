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

Differences that do not change results: attention runs through
:func:`torch.nn.functional.scaled_dot_product_attention`, and inputs whose token grid differs from the
stored position grid (e.g. 384x288 or 256x256 crops with 256x192 weights) get a bicubic-resized grid
instead of an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZE = 16
PATCH_PADDING = 2


@dataclass(frozen=True)
class ViTPreset:
    """Width, depth and number of attention heads of a named backbone size."""

    embed_dim: int
    depth: int
    num_heads: int


#: Official ViTPose sizes, plus ``tiny`` for CPU training and tests (not an official model).
VIT_PRESETS: dict[str, ViTPreset] = {
    "tiny": ViTPreset(192, 6, 3),
    "s": ViTPreset(384, 12, 12),
    "b": ViTPreset(768, 12, 12),
    "l": ViTPreset(1024, 24, 16),
    "h": ViTPreset(1280, 32, 16),
}


def token_grid(input_size: tuple[int, int], patch_size: int = PATCH_SIZE, padding: int = PATCH_PADDING) -> tuple[int, int]:
    """Token grid ``(h, w)`` the padded patch embedding produces for an ``(H, W)`` input."""
    return tuple((s + 2 * padding - patch_size) // patch_size + 1 for s in input_size)  # type: ignore[return-value]


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
    """16x16 patches with padding 2, as in ViTPose (``patch_embed.proj``)."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, PATCH_SIZE, stride=PATCH_SIZE, padding=PATCH_PADDING)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        # A channels-last conv output flattens into contiguous [B, N, C] tokens for free. (Plain
        # NCHW would give transposed strides that every later add and LayerNorm inherit or copy.)
        x = self.proj(x.contiguous(memory_format=torch.channels_last))
        h, w = x.shape[-2:]
        return x.flatten(2).transpose(1, 2).contiguous(), (h, w)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and SDPA."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


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
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = MoEMlp(dim, hidden, num_experts, part_features) if num_experts > 1 else Mlp(dim, hidden)

    def forward(self, x: torch.Tensor, dataset_index: int | torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x), dataset_index))


class ViT(nn.Module):
    """ViTPose backbone: ``forward(x) -> [B, C, H/16, W/16]`` (final LayerNorm'ed feature map).

    Feature maps are returned as channels-last strided views of the token sequence (no copy); call
    ``.contiguous()`` before ``.view()`` if you need NCHW memory.

    Args:
        embed_dim, depth, num_heads: size (see :data:`VIT_PRESETS`).
        input_size: ``(H, W)`` the position grid is stored for; other sizes are resized on the fly.
        mlp_ratio: FFN hidden width over ``embed_dim``.
        drop_path_rate: stochastic depth of the last block (linearly increasing from 0 in block 0).
        ln_eps: LayerNorm epsilon (ViTPose: 1e-6).
        num_experts, part_features: ViTPose+ MoE FFN (``num_experts=1``: plain FFN).
        dataset_index: expert used when :meth:`forward` gets none (COCO=0, AIC=1, MPII=2,
            AP-10K=3, APT-36K=4, COCO-WholeBody=5 for the official ViTPose+ models).

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
        drop_path_rate: float = 0.0,
        ln_eps: float = 1e-6,
        num_experts: int = 1,
        part_features: int = 0,
        dataset_index: int = 0,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.depth = depth
        self.num_experts = num_experts
        self.dataset_index = dataset_index
        self.grid = token_grid(tuple(input_size))
        self.patch_embed = PatchEmbed(embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        # stochastic depth grows linearly from 0 (first block) to drop_path_rate (last block)
        rates = [drop_path_rate * i / (depth - 1) for i in range(depth)] if depth > 1 else [drop_path_rate]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i], ln_eps, num_experts, part_features)
            for i in range(depth)
        )
        self.last_norm = nn.LayerNorm(embed_dim, eps=ln_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal(0.02) linears and position embedding, unit LayerNorms (as ViTPose)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
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
        return tokens + self._pos_embed_for(grid).to(tokens.dtype), grid

    def forward(self, x: torch.Tensor, dataset_index: int | torch.Tensor | None = None) -> torch.Tensor:
        """``[B, 3, H, W]`` -> final normalised feature map ``[B, C, h, w]`` (``h, w`` = token grid)."""
        ds = self.dataset_index if dataset_index is None else dataset_index
        tokens, (h, w) = self._embed(x)
        for blk in self.blocks:
            tokens = blk(tokens, ds)
        return _to_map(self.last_norm(tokens), h, w)

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
            tokens = blk(tokens, ds)
            if i in wanted:
                out = self.last_norm(tokens) if norm else tokens
                found[i] = _to_map(out, h, w)
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
