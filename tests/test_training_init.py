"""Initialising training from a full checkpoint or backbone-only (MAE-style) weights."""

from __future__ import annotations

from pathlib import Path

import torch

from pyramidpose import create_model, save_model
from pyramidpose.models.vit import resize_pos_embed, token_grid
from pyramidpose.training.config import load_config
from pyramidpose.training.engine import build_model, init_weights


def test_full_checkpoint_with_other_input_size_and_keypoint_count(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = create_model("vitpose-tiny", input_size=(256, 192), num_keypoints=17)
    save_model(src, tmp_path / "src.safetensors")
    cfg = load_config(
        None,
        ["model.name=vitpose-tiny", "model.input_size=[128,96]", f"init.pretrained={tmp_path / 'src.safetensors'}"],
    )
    model = build_model(cfg)
    init_weights(model, cfg, log=lambda _: None)
    sd, own = src.state_dict(), model.state_dict()
    assert torch.equal(own["backbone.blocks.3.attn.qkv.weight"], sd["backbone.blocks.3.attn.qkv.weight"])
    assert torch.equal(own["head.final_layer.weight"], sd["head.final_layer.weight"])
    expected = resize_pos_embed(sd["backbone.pos_embed"], token_grid((256, 192)), token_grid((128, 96)))
    assert torch.allclose(own["backbone.pos_embed"], expected)


def test_backbone_only_weights_leave_the_head_alone(tmp_path: Path) -> None:
    torch.manual_seed(2)
    src = create_model("vitpose-tiny", input_size=(256, 192))
    mae = {k: v for k, v in src.state_dict().items() if k.startswith("backbone.")}
    torch.save({"model": mae}, tmp_path / "mae.pth")
    cfg = load_config(None, ["model.name=vitpose-tiny", f"init.backbone_pretrained={tmp_path / 'mae.pth'}"])
    torch.manual_seed(3)
    model = build_model(cfg)
    head_before = model.head.final_layer.weight.detach().clone()
    init_weights(model, cfg, log=lambda _: None)
    assert torch.equal(model.backbone.blocks[0].mlp.fc1.weight, src.backbone.blocks[0].mlp.fc1.weight)
    assert torch.equal(model.head.final_layer.weight, head_before)


def test_pyramid_model_with_aux_loss_trains_and_validates_in_bf16(coco_mini: Path, tmp_path: Path) -> None:
    """``model.neck`` reaches the model (here a feature-pyramid neck with auxiliary
    supervision); the auxiliary loss is added, and validation under bf16 works after training steps."""
    from _training_utils import tiny_config

    from pyramidpose import load_model
    from pyramidpose.training.engine import train

    cfg = tiny_config(
        coco_mini,
        [
            "model.neck={type: fpn, aux_weight: 0.5, channels: 32, head_channels: 32}",
            "train.amp=bf16", "eval.interval=1", "data.max_train_instances=4", "train.epochs=1",
            "data.val_ann=annotations/person_keypoints_train2017.json", "data.val_images=train2017",
        ],
    )  # fmt: skip
    out = train(cfg, tmp_path / "run", max_steps=1)
    assert out["step"] == 1 and out["AP"] is not None
    assert load_model(tmp_path / "run" / "model_last.safetensors").config.neck.aux_weight == 0.5
