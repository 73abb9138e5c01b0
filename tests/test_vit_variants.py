"""ViTPose variants (window attention per block, overlapping patch embedding): build, train a couple
of engine steps, save, load bit-identically and run through ``pyramidpose predict``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import pyramidpose
from pyramidpose import cli
from pyramidpose.errors import ConfigError
from pyramidpose.models.pose_model import config_for

DATA = Path(__file__).parent / "data" / "coco"

VARIANTS = {
    "windows": ["model.attention=[window, shifted, global, pooled, shifted, global]", "model.window_size=[2, 2]"],
    "overlapping": ["model.patch_ratio=2", "model.attention=[window, shifted, window, shifted, pooled, global]",
                    "model.window_size=[4, 4]"],
}  # fmt: skip


def test_overlapping_patches_halve_the_stride_and_keep_stride4_heatmaps() -> None:
    for head in ("classic", "simple"):
        model = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48), head=head, patch_ratio=2).eval()
        assert model.backbone.stride == 8 and model.backbone.grid == (8, 6)
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 48)).shape == (1, 17, 16, 12)
    model = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48), patch_ratio=4).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 48)).shape == (1, 17, 16, 12)


def test_variant_fields_are_checked() -> None:
    with pytest.raises(ConfigError, match="6-block"):
        config_for("vitpose-tiny", attention=("window",))
    with pytest.raises(ConfigError, match="unknown attention"):
        config_for("vitpose-tiny", attention=("swin",) * 6)
    with pytest.raises(ConfigError, match="patch_ratio"):
        config_for("vitpose-tiny", patch_ratio=3)
    with pytest.raises(ConfigError, match="necks"):
        config_for("vitpose-tiny", patch_ratio=2, neck={"type": "fpn"})


def test_global_weights_give_global_outputs_when_the_window_covers_the_crop() -> None:
    """The attention kind is not a parameter: a window model with windows as large as the token grid
    is the global model."""
    torch.manual_seed(0)
    glob = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48)).eval()
    win = pyramidpose.create_model(
        "vitpose-tiny", input_size=(64, 48), attention=("window", "shifted") * 3, window_size=(4, 3)
    ).eval()
    win.load_state_dict(glob.state_dict())
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(win(x), glob(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_trains_saves_loads_and_predicts(variant: str, coco_mini: Path, tmp_path: Path, one_thread) -> None:
    from _training_utils import tiny_config

    from pyramidpose.training.engine import train

    cfg = tiny_config(coco_mini, VARIANTS[variant] + ["train.epochs=1", "data.max_train_instances=8"])
    out = train(cfg, tmp_path / "run", max_steps=2)
    assert out["step"] == 2
    path = tmp_path / "run" / "model_last.safetensors"
    model = pyramidpose.load_model(path)
    assert model.config.attention == cfg.model.attention and len(cfg.model.attention) == 6
    assert model.config.patch_ratio == cfg.model.patch_ratio == (2 if variant == "overlapping" else 1)
    # save -> load is bit-identical (weights and outputs)
    again = pyramidpose.load_model(pyramidpose.save_model(model, tmp_path / "again.safetensors"))
    assert again.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    res = tmp_path / "res.json"
    argv = ["predict", "--weights", str(path), "--image-dir", str(DATA / "images"),
            "--boxes", str(DATA / "person_keypoints_mini.json"), "--out", str(res), "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    results = json.loads(res.read_text())
    n_boxes = sum(1 for a in json.loads((DATA / "person_keypoints_mini.json").read_text())["annotations"]
                  if not a["iscrowd"])  # fmt: skip
    assert len(results) == n_boxes and all(len(r["keypoints"]) == 51 for r in results)
