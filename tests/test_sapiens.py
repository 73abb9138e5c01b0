"""Sapiens: presets, the Goliath layout, official-layout checkpoints (written here: the official
weights cannot be downloaded in this environment) through load_model and ``pyramidpose predict``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import pyramidpose
from pyramidpose import cli
from pyramidpose.errors import CheckpointError
from pyramidpose.models.pose_model import PoseModel
from pyramidpose.models.sapiens import SAPIENS_PRESETS, sapiens_config
from pyramidpose.skeletons import get_keypoint_set

DATA = Path(__file__).parent / "data" / "coco"


def _official_layout(depth: int = 2, width: int = 64, head: int = 32, k: int = 308, seed: int = 0) -> dict:
    """A random state dict with the key names and shape conventions of an official Sapiens pose
    checkpoint (mmpretrain ViT backbone without class token, mmpose HeatmapHead), written out by hand."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.05

    sd = {
        "backbone.patch_embed.projection.weight": r(width, 3, 16, 16),
        "backbone.patch_embed.projection.bias": r(width),
        "backbone.pos_embed": r(1, 64 * 48, width),
        "backbone.ln1.weight": 1 + r(width),
        "backbone.ln1.bias": r(width),
    }
    for i in range(depth):
        p = f"backbone.layers.{i}."
        sd.update({
            p + "ln1.weight": 1 + r(width), p + "ln1.bias": r(width),
            p + "attn.qkv.weight": r(3 * width, width), p + "attn.qkv.bias": r(3 * width),
            p + "attn.proj.weight": r(width, width), p + "attn.proj.bias": r(width),
            p + "ln2.weight": 1 + r(width), p + "ln2.bias": r(width),
            p + "ffn.layers.0.0.weight": r(4 * width, width), p + "ffn.layers.0.0.bias": r(4 * width),
            p + "ffn.layers.1.weight": r(width, 4 * width), p + "ffn.layers.1.bias": r(width),
        })  # fmt: skip
    for j, cin in ((0, width), (3, head)):
        sd[f"head.deconv_layers.{j}.weight"] = r(cin, head, 4, 4)
    for j in (0, 3):
        sd[f"head.conv_layers.{j}.weight"] = r(head, head, 1, 1)
        sd[f"head.conv_layers.{j}.bias"] = r(head)
    for prefix in ("head.deconv_layers.1.", "head.deconv_layers.4.", "head.conv_layers.1.", "head.conv_layers.4."):
        sd.update({prefix + "weight": 1 + r(head), prefix + "bias": r(head), prefix + "running_mean": r(head),
                   prefix + "running_var": 1 + r(head).abs(), prefix + "num_batches_tracked": torch.tensor(7)})  # fmt: skip
    sd["head.final_layer.weight"] = r(k, head, 1, 1)
    sd["head.final_layer.bias"] = r(k)
    return sd


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sapiens") / "sapiens_goliath.pth"
    torch.save({"state_dict": _official_layout(), "meta": {"epoch": 3}}, path)
    return path


def test_presets_have_the_released_sizes() -> None:
    sizes = {"0.3b": 0.3, "0.6b": 0.6, "1b": 1.0, "2b": 2.0}
    for name, billions in sizes.items():
        with torch.device("meta"):
            model = PoseModel(sapiens_config(name))
        n = sum(p.numel() for p in model.backbone.parameters()) / 1e9
        assert abs(n - billions) / billions < 0.25, (name, n)
        assert model.config.input_size == (1024, 768) and model.config.num_keypoints == 308
    assert SAPIENS_PRESETS["1b"].num_heads == 24 and SAPIENS_PRESETS["2b"].embed_dim == 1920


def test_goliath_layout() -> None:
    ks = get_keypoint_set("goliath")
    assert ks.num_keypoints == 308 and ks.sigmas is not None and len(ks.limbs) == 65
    perm = ks.flip_index()
    assert (perm[perm] == np.arange(308)).all()  # an involution
    assert ks.keypoints[perm[ks.index("left_wrist")]] == "right_wrist"
    assert perm[ks.index("nose")] == ks.index("nose")


def test_official_layout_loads_and_matches_a_by_hand_forward(official: Path) -> None:
    model = pyramidpose.load_model(official)
    cfg = model.config
    assert (cfg.embed_dim, cfg.depth, cfg.head_channels, cfg.head_convs) == (64, 2, 32, 2)
    assert cfg.input_size == (1024, 768) and cfg.keypoint_set == "goliath" and cfg.num_keypoints == 308
    sd = _official_layout()
    # reference forward of the official layout written with plain torch ops (no class token)
    x = torch.randn(1, 3, 1024, 768) * 0.5
    f = torch.nn.functional
    t = f.conv2d(x, sd["backbone.patch_embed.projection.weight"], sd["backbone.patch_embed.projection.bias"],
                 stride=16, padding=2).flatten(2).transpose(1, 2) + sd["backbone.pos_embed"]  # fmt: skip
    for i in range(2):
        p = f"backbone.layers.{i}."
        h = f.layer_norm(t, (64,), sd[p + "ln1.weight"], sd[p + "ln1.bias"], 1e-6)
        q, k, v = f.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"]).view(1, -1, 3, 4, 16).permute(
            2, 0, 3, 1, 4)  # fmt: skip
        a = f.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, -1, 64)
        t = t + f.linear(a, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = f.layer_norm(t, (64,), sd[p + "ln2.weight"], sd[p + "ln2.bias"], 1e-6)
        h = f.gelu(f.linear(h, sd[p + "ffn.layers.0.0.weight"], sd[p + "ffn.layers.0.0.bias"]))
        t = t + f.linear(h, sd[p + "ffn.layers.1.weight"], sd[p + "ffn.layers.1.bias"])
    t = f.layer_norm(t, (64,), sd["backbone.ln1.weight"], sd["backbone.ln1.bias"], 1e-6)
    y = t.transpose(1, 2).reshape(1, 64, 64, 48)

    def bn(y: torch.Tensor, p: str) -> torch.Tensor:
        return f.relu(f.batch_norm(y, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"],
                                   sd[p + "bias"], False, 0.0, 1e-5))  # fmt: skip

    y = bn(f.conv_transpose2d(y, sd["head.deconv_layers.0.weight"], stride=2, padding=1), "head.deconv_layers.1.")
    y = bn(f.conv_transpose2d(y, sd["head.deconv_layers.3.weight"], stride=2, padding=1), "head.deconv_layers.4.")
    y = bn(f.conv2d(y, sd["head.conv_layers.0.weight"], sd["head.conv_layers.0.bias"]), "head.conv_layers.1.")
    y = bn(f.conv2d(y, sd["head.conv_layers.3.weight"], sd["head.conv_layers.3.bias"]), "head.conv_layers.4.")
    y = f.conv2d(y, sd["head.final_layer.weight"], sd["head.final_layer.bias"])
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 308, 256, 192)
    # float32 with different op orders (oneDNN channels-last convs, fused attention): 0.5% of the range;
    # a wrong mapping (swapped norms, a missing slot) is off by the order of the range
    assert float((out - y).abs().max()) < 5e-3 * float(y.abs().max())


def test_predict_runs_sapiens_at_1024x768_with_308_keypoints(official: Path, tmp_path: Path) -> None:
    gt = json.loads((DATA / "person_keypoints_mini.json").read_text())
    one = gt["annotations"][0]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": one["image_id"], "category_id": 1, "bbox": one["bbox"], "score": 0.9}]))
    out = tmp_path / "res.json"
    argv = ["predict", "--weights", str(official), "--image-dir", str(DATA / "images"), "--boxes", str(boxes),
            "--out", str(out), "--no-progress", "--decode", "udp"]  # fmt: skip
    assert cli.main(argv) == 0
    results = json.loads(out.read_text())
    assert len(results) == 1 and len(results[0]["keypoints"]) == 308 * 3
    kp = np.asarray(results[0]["keypoints"]).reshape(308, 3)
    from pyramidpose.geometry.crops import box_to_center_scale

    im = next(i for i in gt["images"] if i["id"] == one["image_id"])
    x, y, w, h = one["bbox"]  # the predictor clips the box to the image first
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, im["width"]), min(y + h, im["height"])
    c, s = box_to_center_scale(np.array([x0, y0, x1 - x0, y1 - y0]), 768 / 1024, 1.25)
    assert np.isfinite(kp).all() and (np.abs(kp[:, :2] - c) <= s / 2 + 1).all()  # arg-max (+ quarter px) inside the crop


def test_wrong_checkpoints_name_missing_and_unexpected_keys(tmp_path: Path) -> None:
    sd = _official_layout()
    del sd["backbone.layers.1.attn.proj.weight"]
    sd["backbone.layers.0.attn.gamma"] = torch.zeros(64)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": sd}, bad)
    with pytest.raises(CheckpointError) as err:
        pyramidpose.load_model(bad)
    msg = str(err.value)
    assert "bad.pth" in msg and "backbone.layers.1.attn.proj.weight" in msg and "backbone.layers.0.attn.gamma" in msg
    assert "missing keys (1)" in msg and "unexpected keys (1)" in msg
    sd = _official_layout()
    sd["head.final_layer.weight"] = sd["head.final_layer.weight"][:, :16]  # wrong shape
    torch.save({"state_dict": sd}, bad)
    with pytest.raises(CheckpointError, match="head.final_layer.weight"):
        pyramidpose.load_model(bad)
