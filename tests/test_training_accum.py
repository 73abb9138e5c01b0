"""Gradient accumulation: 2 micro-batches of 2 give the same update as one batch of 4."""

from __future__ import annotations

from pathlib import Path

from _training_utils import tiny_config
from safetensors.torch import load_file

from pyramidpose.training.engine import train


def test_accumulating_two_half_batches_equals_one_full_batch(coco_mini: Path, tmp_path: Path) -> None:
    common = ["train.amp=none", "data.max_train_instances=8"]
    a = train(tiny_config(coco_mini, common + ["train.batch_size=2", "optim.accumulate_steps=2"]), tmp_path / "a", max_steps=2)
    b = train(tiny_config(coco_mini, common + ["train.batch_size=4"]), tmp_path / "b", max_steps=2)
    assert a["step"] == b["step"] == 2
    wa = load_file(str(tmp_path / "a" / "model_last.safetensors"))
    wb = load_file(str(tmp_path / "b" / "model_last.safetensors"))
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert diff <= 1e-5, diff
    # a different batch really gives different weights (the comparison can fail)
    c = train(tiny_config(coco_mini, common + ["train.batch_size=2"]), tmp_path / "c", max_steps=2)
    assert c["step"] == 2
    wc = load_file(str(tmp_path / "c" / "model_last.safetensors"))
    assert max(float((wc[k] - wb[k]).abs().max()) for k in wc) > 1e-4
