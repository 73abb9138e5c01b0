"""ViT backbone, heads and PoseModel: shapes, official semantics, pos-grid resizing, drop path, MoE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pyramidpose.errors import ConfigError
from pyramidpose.models.heads import ClassicHead, SimpleHead
from pyramidpose.models.pose_model import MODEL_NAMES, ModelConfig, PoseModel, create_model
from pyramidpose.models.vit import VIT_PRESETS, Attention, ViT, resize_pos_embed, token_grid


@pytest.fixture(scope="module")
def tiny() -> PoseModel:
    torch.manual_seed(0)
    return create_model("vitpose-tiny").eval()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_presets_build_with_official_sizes(name: str) -> None:
    with torch.device("meta"):  # no memory or init cost, shapes only
        m = create_model(name)
    preset = VIT_PRESETS[m.config.backbone]
    assert m.backbone.pos_embed.shape == (1, 1 + 16 * 12, preset.embed_dim)
    assert len(m.backbone.blocks) == preset.depth
    assert m.backbone.blocks[0].attn.num_heads == preset.num_heads
    assert m.backbone.blocks[0].attn.qkv.bias is not None
    assert m.backbone.blocks[0].mlp.fc1.out_features == 4 * preset.embed_dim
    assert m.backbone.last_norm.eps == 1e-6 and m.backbone.blocks[0].norm1.eps == 1e-6
    conv = m.backbone.patch_embed.proj
    assert conv.kernel_size == (16, 16) and conv.stride == (16, 16) and conv.padding == (2, 2)
    assert isinstance(m.head, SimpleHead if name.endswith("-simple") else ClassicHead)
    if m.config.backbone == "b":
        n = sum(p.numel() for p in m.backbone.parameters())
        assert 85e6 < n < 87e6  # ViT-B/16 backbone with a 16x12 grid


def test_official_sizes_table() -> None:
    assert {k: (p.embed_dim, p.depth, p.num_heads) for k, p in VIT_PRESETS.items() if k != "tiny"} == {
        "s": (384, 12, 12), "b": (768, 12, 12), "l": (1024, 24, 16), "h": (1280, 32, 16)}


def test_forward_shapes_and_token_grid(tiny: PoseModel) -> None:
    assert token_grid((256, 192)) == (16, 12)
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        assert tiny.backbone(x).shape == (2, 192, 16, 12)
        out = tiny(x)
    assert type(out) is torch.Tensor and out.shape == (2, 17, 64, 48)


def test_cls_slot_is_added_to_every_patch_token(tiny: PoseModel) -> None:
    vit = tiny.backbone
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        tokens, grid = vit._embed(x)
        patches = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)
        expected = patches + vit.pos_embed[:, 1:] + vit.pos_embed[:, :1]
    assert grid == (16, 12)
    torch.testing.assert_close(tokens, expected)
    assert vit.pos_embed[:, :1].abs().sum() > 0


def test_attention_matches_explicit_softmax() -> None:
    torch.manual_seed(1)
    attn = Attention(48, 4).eval()
    x = torch.randn(2, 10, 48)
    b, n, c = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, 4, 12).permute(2, 0, 3, 1, 4)
    w = ((q * 12**-0.5) @ k.transpose(-2, -1)).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(b, n, c))
    torch.testing.assert_close(attn(x), ref, rtol=1e-5, atol=1e-6)


def test_pos_grid_resize_identity_and_other_sizes(tiny: PoseModel) -> None:
    pos = tiny.backbone.pos_embed.detach()
    assert resize_pos_embed(pos, (16, 12), (16, 12)) is pos
    big = resize_pos_embed(pos, (16, 12), (24, 18))
    assert big.shape == (1, 1 + 24 * 18, 192)
    torch.testing.assert_close(big[:, :1], pos[:, :1])
    grid = pos[:, 1:].reshape(1, 16, 12, 192).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, size=(24, 18), mode="bicubic", align_corners=False)
    torch.testing.assert_close(big[:, 1:], ref.permute(0, 2, 3, 1).reshape(1, -1, 192))
    with torch.no_grad():
        assert tiny(torch.randn(1, 3, 384, 288)).shape == (1, 17, 96, 72)
        assert tiny(torch.randn(1, 3, 256, 256)).shape == (1, 17, 64, 64)


def test_resized_grid_in_forward_equals_model_built_for_that_size(tiny: PoseModel) -> None:
    big = create_model("vitpose-tiny", input_size=(384, 288)).eval()
    sd = dict(tiny.state_dict())
    sd["backbone.pos_embed"] = resize_pos_embed(sd["backbone.pos_embed"], (16, 12), (24, 18))
    big.load_state_dict(sd)
    x = torch.randn(1, 3, 384, 288)
    with torch.no_grad():
        torch.testing.assert_close(tiny(x), big(x))


def test_forward_intermediates(tiny: PoseModel) -> None:
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        feats = tiny.backbone.forward_intermediates(x, [1, 3, -1])
        last_normed = tiny.backbone.forward_intermediates(x, [-1], norm=True)[0]
        final = tiny.backbone(x)
        first_two = tiny.backbone.forward_intermediates(x, [5, 0])
    assert [f.shape for f in feats] == [(2, 192, 16, 12)] * 3
    torch.testing.assert_close(last_normed, final)
    torch.testing.assert_close(first_two[0], feats[2])
    assert not torch.allclose(feats[0], feats[1])
    with pytest.raises(ValueError, match="out of range"):
        tiny.backbone.forward_intermediates(x, [6])


def test_drop_path_only_in_training() -> None:
    torch.manual_seed(0)
    m = create_model("vitpose-tiny", drop_path=0.5)
    ref = create_model("vitpose-tiny", drop_path=0.0)
    ref.load_state_dict(m.state_dict())
    rates = [blk.drop_path.p for blk in m.backbone.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.5) and rates == sorted(rates)
    x = torch.randn(4, 3, 256, 192)
    m.eval()
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(m.backbone(x), ref.backbone(x))
        m.train()
        torch.manual_seed(1)
        a = m.backbone(x)
        b = m.backbone(x)
    assert not torch.allclose(a, b)


def test_moe_per_sample_and_fixed_index_agree() -> None:
    torch.manual_seed(0)
    vit = ViT(96, 2, 2, num_experts=3, part_features=32).eval()
    for blk in vit.blocks:
        for e, lin in enumerate(blk.mlp.experts):
            torch.nn.init.normal_(lin.weight, std=0.05 * (e + 1))
    x = torch.randn(3, 3, 256, 192)
    with torch.no_grad():
        mixed = vit(x, dataset_index=torch.tensor([0, 2, 1]))
        for i, e in enumerate([0, 2, 1]):
            torch.testing.assert_close(mixed[i : i + 1], vit(x[i : i + 1], dataset_index=e), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(vit(x, dataset_index=0), vit(x, dataset_index=1))
    assert vit.blocks[0].mlp.fc2.out_features == 64 and vit.blocks[0].mlp.experts[0].out_features == 32


def test_heads() -> None:
    x = torch.randn(2, 64, 16, 12)
    classic = ClassicHead(64, 5).eval()
    assert classic.deconv_layers[0].bias is None and classic.deconv_layers[0].out_channels == 256
    assert classic(x).shape == (2, 5, 64, 48)
    simple = SimpleHead(64, 5).eval()
    y = simple(x)
    ref = simple.final_layer(F.interpolate(F.relu(x), size=(64, 48), mode="bilinear", align_corners=False))
    torch.testing.assert_close(y, ref)


def test_parameter_names_for_layer_decay(tiny: PoseModel) -> None:
    names = [n for n, _ in tiny.named_parameters()]
    for prefix in ("backbone.patch_embed.", "backbone.pos_embed", "backbone.blocks.0.", "backbone.blocks.5.",
                   "backbone.last_norm.", "head."):
        assert any(n.startswith(prefix) for n in names), prefix
    assert all(n.startswith(("backbone.", "head.")) for n in names)


def test_create_model_names_and_config() -> None:
    with torch.device("meta"):
        assert create_model("vitpose-b-simple").config.head == "simple"
        assert create_model("ViTPose-S", head="simple").config.name == "vitpose-s-simple"
        m = create_model("vitpose-tiny", num_keypoints=133, input_size=(256, 256), drop_path=0.1)
    assert m.config.num_keypoints == 133 and m.config.input_size == (256, 256)
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("vitpose-xl")
    with pytest.raises(ConfigError, match="unknown model option"):
        create_model("vitpose-tiny", colour="red")
    cfg = ModelConfig(backbone="tiny", embed_dim=192, depth=6, num_heads=3, num_experts=6, part_features=48)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown model config field"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="dataset_index"):
        ModelConfig(dataset_index=2)


def test_backward_runs_on_tiny() -> None:
    m = create_model("vitpose-tiny", drop_path=0.1).train()
    out = m(torch.randn(2, 3, 256, 192))
    out.square().mean().backward()
    assert m.backbone.pos_embed.grad is not None and m.backbone.pos_embed.grad.abs().sum() > 0
    assert m.backbone.blocks[0].attn.qkv.weight.grad is not None


def test_bf16_low_precision_copy_has_autocast_numerics() -> None:
    """The predictor's one-time bf16 weight cast gives exactly plain bf16 autocast's heatmaps."""
    from pyramidpose.utils.device import Precision, autocast_context, low_precision_copy

    torch.manual_seed(0)
    m = create_model("vitpose-tiny").eval()
    x = torch.randn(1, 3, 256, 192)
    bf16 = Precision("bf16", "cpu", "test")
    fast_model = low_precision_copy(m, bf16)
    with torch.no_grad(), autocast_context(bf16):
        fast = fast_model(x)
        ref = m(x)  # plain autocast: casts the fp32 weights on every call
    torch.testing.assert_close(fast, ref, rtol=0, atol=0)
    assert m.head.final_layer.weight.dtype == torch.float32
    assert all("twin" not in k for k in m.state_dict())
