"""Knowledge distillation in the 2D trainer: keypoint teachers (rendered targets, pseudo-labels),
heatmap mimicking, and the knowledge-token scheme end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pyramidpose
from pyramidpose import cli
from pyramidpose.errors import ConfigError


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48), head="simple")
    return pyramidpose.save_model(model, tmp_path_factory.mktemp("teacher") / "teacher.safetensors")


def test_keypoint_teacher_targets_follow_the_augmentation(coco_mini: Path, teacher: Path) -> None:
    """Teacher keypoints go through the sample's flip and affine crop like the ground truth: with the
    teacher replaced by the ground truth itself, both targets are identical."""
    from _training_utils import tiny_config

    from pyramidpose.training.engine import make_dataset

    cfg = tiny_config(coco_mini, ["data.max_train_instances=6", "data.flip_prob=1.0", "data.rot_prob=1.0"])
    ds = make_dataset(cfg, True)
    ds.teacher_keypoints = np.stack([np.asarray(i.keypoints, np.float32) for i in ds.instances])
    ds.teacher_keypoints[..., 2] = np.where(ds.teacher_keypoints[..., 2] > 0, 0.9, 0.0)
    ds.teacher_score_thr = 0.5
    for i in range(len(ds)):
        s = ds[(i, (7, i, 0))]
        np.testing.assert_array_equal(s["teacher_target"], s["target"])
        np.testing.assert_array_equal(s["teacher_weight"], s["target_weight"])
    ds.teacher_score_thr = 0.95  # every teacher keypoint below the threshold: no teacher target
    assert ds[(0, (7, 0, 0))]["teacher_weight"].sum() == 0


def test_distill_with_a_keypoint_teacher_and_pseudo_labels(coco_mini: Path, teacher: Path, tmp_path: Path,
                                                          one_thread, capsys) -> None:  # fmt: skip
    from _training_utils import tiny_config

    from pyramidpose.training.engine import train

    cfg = tiny_config(coco_mini, [f"distill.teacher={teacher}", "distill.mode=keypoints", "distill.score_thr=0.0",
                                  "train.epochs=1", "data.max_train_instances=4"])  # fmt: skip
    out = train(cfg, tmp_path / "run", max_steps=2)
    assert out["step"] == 2
    text = (tmp_path / "run" / "train.log").read_text() if (tmp_path / "run" / "train.log").exists() else ""
    text += capsys.readouterr().out
    assert "pseudo-labelled" in text and "distill: teacher" in text


def test_distill_by_heatmap_mimicking(coco_mini: Path, teacher: Path, tmp_path: Path, one_thread) -> None:
    """The teacher's heatmaps are the target: with gt_weight 0 the loss is the mimicking loss, which a
    student initialised as the teacher has at zero."""
    from _training_utils import tiny_config

    from pyramidpose.training.engine import train

    cfg = tiny_config(coco_mini, [f"distill.teacher={teacher}", "distill.gt_weight=0.0", f"init.pretrained={teacher}",
                                  "train.epochs=1", "data.max_train_instances=4", "optim.lr=0.0", "train.amp=fp32",
                                  "optim.warmup_iters=0", "model.head=simple"])  # fmt: skip
    out = train(cfg, tmp_path / "run", max_steps=1)
    assert out["step"] == 1
    assert float(out["loss"]) < 1e-9


def test_knowledge_token_end_to_end(coco_mini: Path, teacher: Path, tmp_path: Path, one_thread) -> None:
    """Stage 1 learns a token with the frozen teacher (only the token changes), stage 2 trains a student
    with that token appended and frozen; the saved student carries it and predicts."""
    from _training_utils import tiny_overrides

    from pyramidpose.training.distill import load_token

    cfg_file = tmp_path / "student.yaml"
    cfg_file.write_text("{}\n")
    work = tmp_path / "kt"
    argv = ["distill", str(cfg_file), "--teacher", str(teacher), "--knowledge-token", "3", "--max-steps", "2",
            "--work-dir", str(work)]  # fmt: skip
    for o in tiny_overrides(coco_mini, persons=4) + ["train.epochs=1"]:
        argv += ["--set", o]
    assert cli.main(argv) == 0
    token = load_token(work / "knowledge_token.safetensors")
    torch.manual_seed(0)  # the token's initial value (train.seed 0), to show stage 1 trained it
    init = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48), head="simple", knowledge_token=True)
    assert not torch.equal(token, init.backbone.knowledge_token.detach())
    student = pyramidpose.load_model(work / "model_last.safetensors")
    assert student.config.knowledge_token
    assert torch.equal(student.backbone.knowledge_token.detach(), token)  # frozen through training
    with torch.no_grad():
        assert student(torch.randn(1, 3, 64, 48)).shape == (1, 17, 16, 12)


def test_distill_settings_are_checked(coco_mini: Path, teacher: Path, tmp_path: Path) -> None:
    from _training_utils import tiny_config

    from pyramidpose.training.distill import learn_knowledge_token

    with pytest.raises(ConfigError, match="distill.mode"):
        tiny_config(coco_mini, ["distill.mode=logits"])
    with pytest.raises(ConfigError, match="heatmap teacher"):
        learn_knowledge_token(tiny_config(coco_mini), "blazepose", 1)
    with pytest.raises(ConfigError, match="global attention"):
        pyramidpose.create_model("vitpose-tiny", knowledge_token=True, attention=("window",) * 6)
