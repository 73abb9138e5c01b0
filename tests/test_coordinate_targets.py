"""The 2D engine trains SIKR and SimCC models (data.target), and validates them with their decoders."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pyramidpose.errors import ConfigError
from pyramidpose.training.config import load_config
from pyramidpose.training.engine import train

DATA = Path(__file__).parent / "data" / "coco"


def _config(target: str, head: str) -> list[str]:
    return [
        f"data.root={DATA}", "data.train_ann=person_keypoints_mini.json", "data.train_images=images",
        "data.val_ann=person_keypoints_mini.json", "data.val_images=images", f"data.target={target}",
        "model.name=vitpose-tiny", f"model.head={head}", "model.input_size=[64,48]", "data.cache_images=true",
        "data.num_workers=0", "data.flip_prob=0", "data.half_body_prob=0", "data.scale_factor=0", "data.rot_prob=0",
        "data.repeat=1", "train.batch_size=4", "train.epochs=5", "train.threads=1", "train.tensorboard=false",
        "eval.interval=5", "eval.flip_test=true", "optim.warmup_iters=1", "optim.lr=2e-3", "optim.layer_decay=1.0", "checkpoint.interval=0",
    ]  # fmt: skip


@pytest.mark.parametrize(("target", "head"), [("sikr", "simple"), ("simcc", "simcc")])
def test_engine_trains_coordinate_targets(target: str, head: str, tmp_path: Path, one_thread: None) -> None:
    out = train(load_config(None, _config(target, head)), tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 5 and losses[-1] < 0.8 * losses[0]
    assert out["AP"] is not None and 0.0 <= out["AP"] <= 1.0  # validated through the target's decoder


def test_simcc_target_needs_the_simcc_head() -> None:
    with pytest.raises(ConfigError, match="go together"):
        load_config(None, ["data.target=simcc"])
    with pytest.raises(ConfigError, match="data.target"):
        load_config(None, ["data.target=argmax"])
