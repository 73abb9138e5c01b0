"""Must show 3: a run killed with SIGKILL mid-epoch and resumed ends bitwise identical (CPU) to an
uninterrupted run: model, EMA and optimiser state.

The run uses augmentation, drop path (torch RNG), EMA, a DataLoader worker and a mid-epoch checkpoint
every 3 steps; the killed process dies (SIGKILL, sent to itself from the ``on_step`` callback this test
passes to ``train``) at step 7 of 8, one step after its last checkpoint, in the middle of epoch 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from _training_utils import tiny_config
from safetensors.torch import load_file

from pyramidpose.training.checkpoint import load_training_state
from pyramidpose.training.engine import train

#: Run in a child process: train with a callback that SIGKILLs the process right after step N.
KILL_SCRIPT = """
import os, signal, sys
from pyramidpose.training.engine import train

def kill_at(step):
    if step == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)

train(sys.argv[1], sys.argv[2], on_step=kill_at)
"""

SETS = [
    "data.repeat=2", "train.epochs=2", "train.amp=bf16", "model.drop_path=0.1", "optim.ema=true",
    "optim.ema_decay=0.9", "data.num_workers=1", "checkpoint.save_every_steps=3", "data.color_jitter=0.2",
]  # fmt: skip


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(coco_mini: Path, tmp_path: Path) -> None:
    cfg = tiny_config(coco_mini, SETS)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(cfg.to_yaml())
    # 8 persons x 2 / batch 4 = 4 steps per epoch, 8 in total
    full = train(cfg, tmp_path / "full")
    assert full["step"] == 8

    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(cfg_file), str(killed), "7"],
        env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    state = load_training_state(killed)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (6, 1, 2)  # mid-epoch checkpoint

    resumed = train(cfg, killed, resume=killed)
    assert resumed["step"] == 8
    a = load_file(str(tmp_path / "full" / "model_last.safetensors"))  # EMA weights (optim.ema)
    b = load_file(str(killed / "model_last.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from the uninterrupted one"
    sa, sb = load_training_state(tmp_path / "full"), load_training_state(killed)
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    for pa, pb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"]) and torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])
    # and an interrupted run that is NOT resumed really is different (the test can fail)
    assert not all(torch.equal(sa["model"][k], state["model"][k]) for k in sa["model"])
