"""Feature-pyramid necks and pyramid heads: shapes, gradients, top-down flow, config, layer decay."""

from __future__ import annotations

import pytest
import torch

from pyramidpose.errors import ConfigError
from pyramidpose.models.necks import (
    BlockFusionNeck,
    MultiLevelFPN,
    NeckConfig,
    SimpleFeaturePyramid,
    build_neck,
    default_block_indices,
)
from pyramidpose.models.pose_model import PoseOutput, create_model
from pyramidpose.models.pyramid_heads import PyramidHead, aux_heatmap_loss, downsample_targets

# A small custom backbone keeps the default suite fast; the neck code is width-agnostic.
SMALL = {"embed_dim": 64, "depth": 4, "num_heads": 2}

VARIANTS = {
    "sfp": {"type": "sfp", "channels": 32, "head_channels": 32},
    "fpn": {"type": "fpn", "channels": 32, "head_channels": 32},
    "fpn_concat_aux": {"type": "fpn", "channels": 32, "head_channels": 32, "fuse": "concat", "aux_weight": 0.5},
    "fusion": {"type": "fusion", "channels": 32, "head_channels": 32},
    "sfp_aux_gn": {"type": "sfp", "channels": 32, "head_channels": 32, "aux_weight": 1.0, "norm": "gn"},
}


def _small_model(neck: dict | None, input_size=(256, 192)):
    torch.manual_seed(0)
    return create_model("vitpose-tiny", input_size=input_size, neck=neck, **SMALL)


@pytest.mark.parametrize("size", [(256, 192), (384, 288)])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_forward_backward_reaches_every_neck_and_head_parameter(variant, size):
    model = _small_model(VARIANTS[variant]).train()
    x = torch.randn(2, 3, *size)
    result = model.forward_train(x)
    out = result.heatmaps
    assert out.shape == (2, 17, size[0] // 4, size[1] // 4)
    target = torch.rand_like(out)
    weight = torch.ones(2, 17)
    loss = ((out - target) ** 2).mean()
    aux = model.aux_loss(result, target, weight)
    if VARIANTS[variant].get("aux_weight", 0) > 0:
        assert aux is not None and aux.item() > 0
        loss = loss + aux
    else:
        assert aux is None
    loss.backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if name.startswith(("neck.", "head.")) and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing, f"no gradient reached {missing}"
    # the backbone is trained too (through every block the neck reads)
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


def test_pyramid_levels_have_declared_strides_and_channels():
    feats = [torch.randn(1, 64, 24, 18) for _ in range(4)]  # a 384x288 crop at stride 16
    for neck in (
        SimpleFeaturePyramid(64, 16),
        MultiLevelFPN(64, [0, 1, 2, 3], 16),
        BlockFusionNeck(64, [0, 1, 2, 3], 16, out_stride=4),
        BlockFusionNeck(64, [1, 3], 16, out_stride=8),
    ):
        outs = neck(feats[: len(neck.in_indices)] if neck.in_indices else feats[-1:])
        assert len(outs) == len(neck.strides)
        for o, s in zip(outs, neck.strides):
            assert o.shape == (1, 16, 384 // s, 288 // s), (type(neck).__name__, s)


def test_fpn_top_down_pathway_carries_deep_features_to_stride_4():
    torch.manual_seed(0)
    neck = MultiLevelFPN(32, [0, 1, 2, 3], 8).eval()
    feats = [torch.randn(1, 32, 16, 12) for _ in range(4)]
    base = neck(feats)
    changed = list(feats)
    changed[3] = torch.randn_like(feats[3])  # only the deepest block (stride-32 level) changes
    out = neck(changed)
    assert not torch.allclose(out[0], base[0])  # ... yet the finest level sees it (top-down add)
    changed = list(feats)
    changed[0] = torch.randn_like(feats[0])  # the shallowest block feeds only the finest level
    out = neck(changed)
    assert not torch.allclose(out[0], base[0])
    for a, b in zip(out[1:], base[1:]):
        torch.testing.assert_close(a, b)


def test_sfp_uses_only_the_last_block_and_model_reads_requested_blocks():
    model = _small_model({"type": "sfp", "channels": 16, "head_channels": 16})
    assert model.neck.in_indices is None
    model = _small_model({"type": "fpn", "channels": 16, "head_channels": 16, "in_indices": [0, 1, 2, 3]})
    assert model.neck.in_indices == (0, 1, 2, 3)
    model = _small_model({"type": "fusion", "channels": 16, "head_channels": 16})
    assert model.neck.in_indices == tuple(default_block_indices(4))


def test_default_block_indices_match_vitpose_b_blocks_3_6_9_12():
    assert default_block_indices(12) == [2, 5, 8, 11]
    assert default_block_indices(24) == [5, 11, 17, 23]
    assert default_block_indices(6) == [1, 2, 4, 5]


def test_aux_maps_only_from_forward_train_and_forward_is_plain_tensor():
    model = _small_model(VARIANTS["fpn_concat_aux"])
    x = torch.randn(1, 3, 256, 192)
    model.train()
    out = model(x)
    assert isinstance(out, torch.Tensor)
    result = model.forward_train(x)
    assert isinstance(result, PoseOutput)
    assert [tuple(a.shape[-2:]) for a in result.aux] == [(32, 24), (16, 12), (8, 6)]
    torch.testing.assert_close(result.heatmaps, out)  # same pass, same heatmaps (BN in train mode)
    model.eval()
    with torch.no_grad():
        out_eval = model(x)
    assert out_eval.shape == out.shape
    assert model.aux_loss(PoseOutput(out, []), torch.zeros_like(out), None) is None
    plain = _small_model({"type": "fpn", "channels": 16, "head_channels": 16})
    assert plain.forward_train(x).aux == []


def test_aux_loss_is_zero_for_matching_targets_and_positive_otherwise():
    target = torch.zeros(2, 3, 64, 48)
    target[:, :, 30, 20] = 1.0
    target = torch.nn.functional.avg_pool2d(target, 5, 1, 2) * 25  # a blob with peak 1
    small = downsample_targets(target, (16, 12))
    assert small.amax().item() == pytest.approx(1.0)
    assert aux_heatmap_loss([small], target).item() == pytest.approx(0.0, abs=1e-12)
    weight = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    assert aux_heatmap_loss([torch.zeros_like(small)], target, weight).item() > 0


def test_neck_and_head_form_the_top_layer_decay_group():
    from pyramidpose.training.config import OptimConfig
    from pyramidpose.training.optim import param_groups

    model = _small_model(VARIANTS["fpn"])
    groups = param_groups(model, OptimConfig(layer_decay=0.5))
    scale = {name: g["lr_scale"] for g in groups for name in g["names"]}
    top = max(scale.values())
    assert top == 1.0
    for name, s in scale.items():
        if name.startswith(("neck.", "head.")):
            assert s == top, name
    assert scale["backbone.blocks.3.mlp.fc1.weight"] == 0.5
    assert scale["backbone.patch_embed.proj.weight"] == 0.5**5


def test_bad_neck_configs_are_config_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        NeckConfig.from_dict({"type": "fpn", "chanels": 64})
    with pytest.raises(ConfigError, match="not one of"):
        NeckConfig.from_dict({"type": "bifpn"})
    with pytest.raises(ConfigError, match="out of range"):
        _small_model({"type": "fpn", "in_indices": [0, 1, 2, 9]})
    with pytest.raises(ConfigError, match="one block per level"):
        build_neck({"type": "fpn", "in_indices": [0, 1]}, 64, 4)
    with pytest.raises(ConfigError, match="stride"):
        build_neck({"type": "sfp", "strides": [2, 4]}, 64, 4)
    with pytest.raises(ConfigError):
        PyramidHead(16, [4, 8], 17, fuse="max")


def test_neck_config_round_trips_through_model_config_dict():
    from pyramidpose.models.pose_model import ModelConfig

    model = _small_model(VARIANTS["fusion"])
    cfg = ModelConfig.from_dict(model.config.to_dict())
    assert cfg.neck == model.config.neck and isinstance(cfg.neck, NeckConfig) and cfg.neck.type == "fusion"
    assert isinstance(model.config.to_dict()["neck"], dict)  # JSON-ready
    clone = create_model("vitpose-tiny", **{k: v for k, v in cfg.to_dict().items() if k in ("neck",)}, **SMALL)
    assert set(clone.state_dict()) == set(model.state_dict())


@pytest.mark.parametrize("variant", ["sfp", "fpn", "fusion"])
def test_official_backbone_weights_load_bit_identical_and_leave_neck_and_head_fresh(tmp_path, variant):
    from pyramidpose.models.checkpoints import load_backbone_weights

    # An official mmpose-format ViTPose checkpoint: backbone.* + keypoint_head.* under "state_dict".
    torch.manual_seed(123)
    source = create_model("vitpose-tiny", **SMALL)
    official = {
        ("keypoint_head." + k[len("head.") :] if k.startswith("head.") else k): v.clone()
        for k, v in source.state_dict().items()
    }
    official["backbone.cls_token"] = torch.zeros(1, 1, SMALL["embed_dim"])
    path = tmp_path / "vitpose_official.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": official}, path)

    model = _small_model(VARIANTS[variant])
    fresh = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    report = load_backbone_weights(model, path, strict=True)
    assert report["missing"] == []
    for k, v in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    for k, v in fresh.items():  # neck and head keep their fresh initialisation
        assert torch.equal(model.state_dict()[k], v), k
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        assert torch.equal(model.eval().backbone(x), source.eval().backbone(x))
    loss = model.train()(x).square().mean()
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("neck."))


def test_neck_model_saves_and_loads_with_its_config(tmp_path):
    from pyramidpose.models.checkpoints import load_model, save_model

    model = _small_model(VARIANTS["fpn_concat_aux"]).eval()
    path = save_model(model, tmp_path / "fpn")
    loaded = load_model(path)
    assert loaded.config.neck == model.config.neck
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "kind,neck_type", [("simple", "sfp"), ("multilevel", "fpn"), ("fusion", "fusion"), ("multilevel_aux", "fpn")]
)
def test_pyramid_configs_differ_from_their_baseline_only_in_the_neck(kind, neck_type):
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import build_model

    pairs = (
        ("vitpose_b_coco_256x192.yaml", f"vitpose_b_fpn_{kind}.yaml", 12),
        ("coco_mini_tiny.yaml", f"coco_mini_tiny_fpn_{kind}.yaml", 6),
        ("synthetic_tiny.yaml", f"synthetic_tiny_fpn_{kind}.yaml", 6),
    )
    for base_name, name, depth in pairs:
        base = load_config(REPO / "configs" / base_name).to_dict()
        cfg = load_config(REPO / "configs" / name)
        d = cfg.to_dict()
        neck = d["model"].pop("neck")
        assert base["model"].pop("neck") is None
        assert d == base, f"{name} must equal {base_name} apart from model.neck"
        ncfg = NeckConfig.from_dict(neck)
        assert ncfg.type == neck_type
        indices = ncfg.resolved_indices(depth)
        if neck_type != "sfp":
            assert indices[-1] == depth - 1 and len(indices) == 4
    model = build_model(cfg)  # the tiny one: builds and keeps the K=17 stride-4 output
    out = model(torch.zeros(1, 3, *cfg.model.input_size))
    assert out.shape == (1, 17, cfg.model.input_size[0] // 4, cfg.model.input_size[1] // 4)


def test_forward_leaves_no_state_on_the_model():
    """Neither forward nor forward_train stores anything on the model (no aux maps, no bf16 twin):
    the attribute dicts of every module are the same before and after, in both modes and under bf16."""
    model = create_model("vitpose-tiny", input_size=(64, 48), neck={"type": "fpn", "aux_weight": 0.5})

    def snapshot():
        return {name: sorted(vars(m)) for name, m in model.named_modules()}

    before = snapshot()
    model.train()
    out = model.forward_train(torch.randn(2, 3, 64, 48))
    (out.heatmaps.sum() + sum(a.sum() for a in out.aux)).backward()
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(1, 3, 64, 48))
    assert snapshot() == before
    assert not hasattr(model.head, "aux_outputs") and not hasattr(model.head, "forward_with_aux")
