"""Checkpoint loading: equivalence with transformers' VitPose, official layout, own format, errors."""

from __future__ import annotations

import json
import logging
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import pyramidpose
from pyramidpose.errors import CheckpointError
from pyramidpose.models.checkpoints import load_backbone_weights, read_checkpoint, save_model
from pyramidpose.models.pose_model import create_model

transformers = pytest.importorskip("transformers")


def _hf_model(size: str, simple: bool, seed: int = 0) -> torch.nn.Module:
    """A random transformers VitPoseForPoseEstimation with non-trivial norms and BN statistics."""
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    width, depth, heads = {"s": (384, 12, 12), "b": (768, 12, 12)}[size]
    torch.manual_seed(seed)
    bb = VitPoseBackboneConfig(
        hidden_size=width,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        image_size=[256, 192],
        layer_norm_eps=1e-6,
        out_indices=[depth],
    )
    cfg = VitPoseConfig(backbone_config=bb, use_simple_decoder=simple, num_labels=17)
    with torch.device("meta"):  # skip transformers' (slow) init: every tensor is filled below
        model = VitPoseForPoseEstimation(cfg)
    model = model.to_empty(device="cpu").eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.uniform_(-0.035, 0.035, generator=g)
        for m in model.modules():
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.05 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
        # make the cls slot of the position embedding matter
        model.backbone.embeddings.position_embeddings[:, :1].add_(0.5)
    return model


def _hf_to_official(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Independent re-statement of the official mmpose layout (not pyramidpose's converter)."""
    out: dict[str, torch.Tensor] = OrderedDict()
    out["backbone.cls_token"] = torch.zeros(1, 1, sd["backbone.embeddings.position_embeddings"].shape[-1])
    out["backbone.pos_embed"] = sd["backbone.embeddings.position_embeddings"]
    out["backbone.patch_embed.proj.weight"] = sd["backbone.embeddings.patch_embeddings.projection.weight"]
    out["backbone.patch_embed.proj.bias"] = sd["backbone.embeddings.patch_embeddings.projection.bias"]
    i = 0
    while f"backbone.encoder.layer.{i}.layernorm_before.weight" in sd:
        src, dst = f"backbone.encoder.layer.{i}.", f"backbone.blocks.{i}."
        for t in ("weight", "bias"):
            out[dst + f"norm1.{t}"] = sd[src + f"layernorm_before.{t}"]
            out[dst + f"attn.qkv.{t}"] = torch.cat(
                [sd[src + f"attention.attention.{n}.{t}"] for n in ("query", "key", "value")]
            )
            out[dst + f"attn.proj.{t}"] = sd[src + f"attention.output.dense.{t}"]
            out[dst + f"norm2.{t}"] = sd[src + f"layernorm_after.{t}"]
            out[dst + f"mlp.fc1.{t}"] = sd[src + f"mlp.fc1.{t}"]
            out[dst + f"mlp.fc2.{t}"] = sd[src + f"mlp.fc2.{t}"]
        i += 1
    out["backbone.last_norm.weight"] = sd["backbone.layernorm.weight"]
    out["backbone.last_norm.bias"] = sd["backbone.layernorm.bias"]
    head = {"deconv1": "deconv_layers.0", "batchnorm1": "deconv_layers.1", "deconv2": "deconv_layers.3",
            "batchnorm2": "deconv_layers.4", "conv": "final_layer"}
    for k, v in sd.items():
        if k.startswith("head."):
            mod, rest = k[len("head."):].split(".", 1)
            out[f"keypoint_head.{head[mod]}.{rest}"] = v
    return out


def _save_official(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """Save like mmcv does, with a realistic meta dict (numpy scalars, a ConfigDict-like object)."""
    mod = types.ModuleType("mmcv_fake.utils.config")

    class ConfigDict(dict):
        pass

    ConfigDict.__module__ = mod.__name__
    ConfigDict.__qualname__ = "ConfigDict"
    mod.ConfigDict = ConfigDict
    fakes = {"mmcv_fake": types.ModuleType("mmcv_fake"), "mmcv_fake.utils": types.ModuleType("mmcv_fake.utils"),
             mod.__name__: mod}
    sys.modules.update(fakes)
    try:
        meta = {
            "mmcv_version": "1.3.9",
            "time": "Tue May 24 10:00:00 2022",
            "mmpose_version": "0.24.0",
            "config": "model = dict(type='TopDown', backbone=dict(type='ViT'))",
            "epoch": 210,
            "iter": 123456,
            "hook_msgs": {"best_score": np.float64(0.758), "last_ckpt": "/work/epoch_210.pth"},
            "cfg": ConfigDict(model=ConfigDict(type="TopDown")),
            "array": np.arange(3),
        }
        torch.save({"state_dict": state_dict, "meta": meta}, path)
    finally:
        for name in fakes:
            del sys.modules[name]


@pytest.mark.parametrize("size,simple", [("s", False), ("s", True), ("b", False), ("b", True)])
def test_equivalence_with_transformers(tmp_path: Path, size: str, simple: bool, caplog) -> None:
    hf = _hf_model(size, simple)
    hf_dir = tmp_path / "hf"
    hf.save_pretrained(hf_dir)
    official = _hf_to_official(hf.state_dict())
    official["associate_keypoint_heads.0.final_layer.weight"] = torch.zeros(14, 256, 1, 1)
    pth = tmp_path / "official.pth"
    _save_official(pth, official)

    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = hf(pixel_values=x).heatmaps
    assert ref.shape == (1, 17, 64, 48)
    assert ref.abs().max() > 1e-2  # the comparison below is not between near-zero maps

    for src in (hf_dir, pth):
        with caplog.at_level(logging.INFO, logger="pyramidpose.models.checkpoints"):
            model = pyramidpose.load_model(src)
        assert not model.training
        assert model.config.head == ("simple" if simple else "classic")
        assert model.config.backbone == size
        with torch.no_grad():
            out = model(x)
        assert isinstance(out, torch.Tensor)
        diff = (out - ref).abs().max().item()
        assert diff < 1e-4, f"{src.name}: max abs diff {diff}"
    assert any("backbone.cls_token" in r.getMessage() for r in caplog.records)


def test_own_format_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("vitpose-tiny", num_keypoints=5, head="simple").eval()
    f = save_model(model, tmp_path / "m.safetensors")
    assert f.is_file() and not list(tmp_path.glob(".*tmp*"))
    again = pyramidpose.load_model(f)
    assert again.config == model.config
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    d = tmp_path / "dir"
    save_model(model, d)
    assert pyramidpose.load_model(d).config.num_keypoints == 5


def test_official_format_tiny_and_input_size(tmp_path: Path) -> None:
    model = create_model("vitpose-tiny").eval()
    sd = _official_sd(model)
    pth = tmp_path / "tiny.pth"
    torch.save({"state_dict": sd, "meta": {"epoch": 1}}, pth)
    loaded = pyramidpose.load_model(pth)
    assert loaded.config.backbone == "tiny" and loaded.config.input_size == (256, 192)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    big = pyramidpose.load_model(pth, input_size=(384, 288))
    assert big.backbone.pos_embed.shape[1] == 1 + 24 * 18
    with torch.no_grad():
        assert big(torch.randn(1, 3, 384, 288)).shape == (1, 17, 96, 72)


def _official_sd(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A pyramidpose model's weights under official mmpose names."""
    return {("keypoint_head." + k[5:] if k.startswith("head.") else k): v for k, v in model.state_dict().items()}


def _moe_official_state_dict(experts: int = 6, part: int = 48) -> dict[str, torch.Tensor]:
    model = create_model("vitpose-tiny", num_experts=experts, part_features=part)
    with torch.no_grad():
        for i, blk in enumerate(model.backbone.blocks):
            for e, lin in enumerate(blk.mlp.experts):
                lin.bias.fill_(float(e + 1) * (i + 1))
    return _official_sd(model)


def test_moe_loading_picks_expert(tmp_path: Path) -> None:
    sd = _moe_official_state_dict()
    aic_head = create_model("vitpose-tiny", num_keypoints=14).head.state_dict()
    sd.update({f"associate_keypoint_heads.0.{k}": v for k, v in aic_head.items()})  # ViTPose+ AIC head
    pth = tmp_path / "moe.pth"
    torch.save({"state_dict": sd, "meta": {}}, pth)
    m0 = pyramidpose.load_model(pth)
    assert m0.config.num_experts == 6 and m0.config.part_features == 48
    m2 = pyramidpose.load_model(pth, dataset=2)
    m2b = pyramidpose.load_model(pth, dataset="mpii")
    assert m2.dataset_index == 2 and m2b.dataset_index == 2
    # The MoE FFN of dataset 2 = shared fc2 channels followed by expert 2's channels:
    blk = m2.backbone.blocks[-1]
    h = torch.randn(1, 4, 192)
    out2 = blk.mlp(h, 2)
    shared = blk.mlp.fc2(blk.mlp.act(blk.mlp.fc1(h)))
    part = blk.mlp.experts[2](blk.mlp.act(blk.mlp.fc1(h)))
    torch.testing.assert_close(out2, torch.cat([shared, part], -1))
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        y0, y2 = m0(x), m2(x)
        # per-sample expert indices agree with the fixed index
        feat = m2.backbone(x, dataset_index=torch.tensor([2, 0]))
        torch.testing.assert_close(feat[:1], m2.backbone(x[:1]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(feat[1:], m0.backbone(x[1:]), rtol=1e-5, atol=1e-5)
    assert (y0 - y2).abs().max() > 1e-6
    assert m0.config.num_keypoints == 17 and m2.config.num_keypoints == 17  # no associate head 1: COCO head
    aic = pyramidpose.load_model(pth, dataset="aic")
    assert aic.config.num_keypoints == 14 and aic.config.keypoint_set == "aic" and aic.dataset_index == 1
    torch.testing.assert_close(aic.head.final_layer.weight, aic_head["final_layer.weight"])
    with pytest.raises(CheckpointError, match="6 expert"):
        pyramidpose.load_model(pth, dataset=6)


def test_dataset_on_single_expert_model_is_an_error(tmp_path: Path) -> None:
    f = save_model(create_model("vitpose-tiny"), tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="not a ViTPose\\+ model"):
        pyramidpose.load_model(f, dataset=1)


def test_partial_checkpoint_names_keys(tmp_path: Path) -> None:
    model = create_model("vitpose-tiny")
    sd = _official_sd(model)
    del sd["backbone.blocks.3.attn.proj.weight"]
    sd["backbone.blocks.1.mlp.fc2.bias"] = torch.zeros(7)
    sd["backbone.extra_thing"] = torch.zeros(1)
    pth = tmp_path / "bad.pth"
    torch.save({"state_dict": sd}, pth)
    with pytest.raises(CheckpointError) as err:
        pyramidpose.load_model(pth)
    msg = str(err.value)
    assert "missing keys (1): backbone.blocks.3.attn.proj.weight" in msg
    assert "unexpected keys (1): backbone.extra_thing" in msg
    assert "backbone.blocks.1.mlp.fc2.bias: checkpoint (7,) vs model (192,)" in msg
    assert str(pth) in msg


def test_bad_files_are_checkpoint_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pth"):
        pyramidpose.load_model(junk)
    with pytest.raises(CheckpointError, match="no such file"):
        pyramidpose.load_model(tmp_path / "missing.pth")
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(3)}}, other)
    with pytest.raises(CheckpointError, match="not a ViTPose state dict"):
        pyramidpose.load_model(other)
    d = tmp_path / "emptydir"
    d.mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        pyramidpose.load_model(d)


def test_malicious_pickle_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    f = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "meta": Evil()}, f)
    with pytest.raises(CheckpointError):
        pyramidpose.load_model(f)
    assert not marker.exists()


def test_load_backbone_weights_resizes_mae_grid(tmp_path: Path) -> None:
    src = create_model("vitpose-tiny", input_size=(224, 224))
    sd = {k[len("backbone."):]: v for k, v in src.state_dict().items() if k.startswith("backbone.")}
    sd["cls_token"] = torch.zeros(1, 1, 192)
    sd["norm.weight"] = torch.ones(192)
    sd["decoder_embed.weight"] = torch.zeros(4, 192)
    # MAE stores a 14x14 grid (+cls); our 224x224 model has a 14x14 grid with padding 2 too
    f = tmp_path / "mae.pth"
    torch.save({"model": sd}, f)
    dst = create_model("vitpose-tiny")
    report = load_backbone_weights(dst, f)
    assert "pos_embed" in report["loaded"] and "blocks.0.attn.qkv.weight" in report["loaded"]
    assert "decoder_embed.weight" in report["skipped"] and "norm.weight" in report["skipped"]
    assert dst.backbone.pos_embed.shape == (1, 1 + 16 * 12, 192)
    torch.testing.assert_close(dst.backbone.blocks[2].mlp.fc1.weight, src.backbone.blocks[2].mlp.fc1.weight)
    torch.testing.assert_close(dst.backbone.pos_embed[:, :1], src.backbone.pos_embed[:, :1])


def test_read_checkpoint_reports_format(tmp_path: Path) -> None:
    f = save_model(create_model("vitpose-tiny"), tmp_path / "m.safetensors")
    sd, cfg, fmt = read_checkpoint(f)
    assert fmt == "pyramidpose" and cfg.backbone == "tiny" and "backbone.pos_embed" in sd
    meta = json.loads(__import__("safetensors").safe_open(str(f), "pt").metadata()["pyramidpose_config"])
    assert meta["input_size"] == [256, 192]
