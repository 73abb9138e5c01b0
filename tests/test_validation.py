"""Must show 2 of issue 11: the AP logged by training validation is the AP of ``pyramidpose predict``
+ ``pyramidpose eval`` on the same checkpoint and boxes (both go through TopDownPredictor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _coco_subset import coco_subset

from pyramidpose import cli, load_model, save_model
from pyramidpose.training.config import load_config
from pyramidpose.training.distributed import DistInfo
from pyramidpose.training.engine import build_model, make_dataset, train
from pyramidpose.training.validation import predict_instances, validate


def _key(r: dict) -> tuple:
    return (r["image_id"], tuple(r["keypoints"]))


def _validate_then_predict_and_eval(cfg, model, ann: Path, images: Path, tmp: Path, decode: str | None, capsys):
    ckpt = save_model(model, tmp / "m.safetensors")
    model = load_model(ckpt)  # the checkpoint, as predict reads it
    ds = make_dataset(cfg, False)
    metrics = validate(model, ds, cfg, DistInfo())
    assert metrics is not None and metrics["num_predictions"] == len(ds) > 5
    val_results, bad = predict_instances(model, ds, cfg.eval.batch_size, cfg.eval.flip_test)
    assert not bad
    out = tmp / "pred.json"
    argv = ["predict", "--weights", str(ckpt), "--input", str(images), "--boxes", str(ann), "--mmpose-gt-boxes",
            "--out", str(out), "--batch-size", str(cfg.eval.batch_size), "--no-progress"]  # fmt: skip
    argv += ["--decode", decode] if decode else []
    assert cli.main(argv) == 0
    predicted = json.loads(out.read_text())
    # the same poses, to the last digit written, and the same scores
    assert sorted(map(_key, predicted)) == sorted(map(_key, val_results))
    s_val = {_key(r): r["score"] for r in val_results}
    assert all(s_val[_key(r)] == r["score"] for r in predicted)
    stats = tmp / "stats.json"
    assert cli.main(["eval", "--gt", str(ann), "--pred", str(out), "--out", str(stats)]) == 0
    capsys.readouterr()
    return metrics["AP"], json.loads(stats.read_text())["AP"]


@pytest.mark.parametrize("codec,decode", [("udp", None), ("msra", "dark")])
def test_validation_ap_equals_predict_plus_eval(coco_mini: Path, tmp_path: Path, capsys, codec: str, decode) -> None:
    """An untrained model (AP near 0, but every pose compared) on 12 val images, both codecs."""
    ann, images = coco_subset(coco_mini, "val", 12, tmp_path)
    cfg = load_config(None, [
        f"data.root={coco_mini}", "model.name=vitpose-tiny", "model.head=simple", "model.input_size=[64,48]",
        f"model.codec={codec}", f"data.val_ann={ann}", "data.num_workers=0", "eval.batch_size=16",
    ])  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg)
    model.config.codec = codec
    ap_val, ap_cli = _validate_then_predict_and_eval(cfg, model, ann, images, tmp_path, decode, capsys)
    print(f"{codec}: validation AP {ap_val:.6f}, predict + eval AP {ap_cli:.6f}")
    assert ap_cli == ap_val


@pytest.mark.slow
def test_validation_ap_equals_predict_plus_eval_after_training(coco_mini: Path, tmp_path: Path, capsys) -> None:
    """A model trained (100 steps) on the persons of 6 train images, validated on them: a real AP."""
    from _training_utils import tiny_overrides

    ann, images = coco_subset(coco_mini, "train", 6, tmp_path)
    cfg = load_config(None, tiny_overrides(coco_mini, persons=1000) + [
        "data.flip_prob=0", "data.half_body_prob=0", "data.scale_factor=0", "data.rot_prob=0",
        "data.repeat=20", "train.batch_size=8", "optim.lr=2e-3", "optim.layer_decay=1.0", "optim.weight_decay=0",
        f"data.train_ann={ann}", f"data.val_ann={ann}", "data.val_images=train2017", "eval.batch_size=16",
    ])  # fmt: skip
    train(cfg, tmp_path / "run", max_steps=100)
    model = load_model(tmp_path / "run" / "model_last.safetensors")
    ap_val, ap_cli = _validate_then_predict_and_eval(cfg, model, ann, images, tmp_path, None, capsys)
    print(f"trained: validation AP {ap_val:.4f}, predict + eval AP {ap_cli:.4f}")
    assert ap_val > 0.05 and ap_cli == ap_val  # a real AP (0.105 with fp32 training, 0.096 with bf16)
