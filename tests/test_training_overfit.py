"""Must show 1: a tiny model overfits 8 coco-mini persons (PCK@0.2 >= 0.9 on them) on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

from _training_utils import tiny_config

from pyramidpose import load_model
from pyramidpose.evaluation.metrics import pck_bbox_per_axis
from pyramidpose.training.engine import build_model, make_dataset, train
from pyramidpose.training.validation import predict_instances


def test_tiny_model_overfits_eight_persons(coco_mini: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
        coco_mini,
        [
            # no augmentation: the point is memorising 8 crops; 8 persons x 20 per epoch
            "data.flip_prob=0", "data.half_body_prob=0", "data.scale_factor=0", "data.rot_prob=0",
            "data.repeat=20", "train.batch_size=8", "train.amp=bf16", "optim.lr=2e-3", "optim.layer_decay=1.0",
            "optim.weight_decay=0", "optim.schedule=cosine", "optim.warmup_iters=10", "train.epochs=3",
            "data.val_ann=annotations/person_keypoints_train2017.json", "data.val_images=train2017",
        ],
    )  # fmt: skip
    out = train(cfg, tmp_path / "run", max_steps=60)
    assert out["step"] == 60
    # the exported file loads with the public loader
    model = load_model(tmp_path / "run" / "model_last.safetensors")
    ds = make_dataset(cfg, False)
    ds.instances = ds.instances[:8]  # the same 8 persons as training (same file, same order)
    results, _ = predict_instances(model, ds, flip_test=False, precision="bf16")
    gt = json.loads(ds.ann_file.read_text())
    ids = {i.ann_id for i in ds.instances}
    gt["annotations"] = [a for a in gt["annotations"] if a["id"] in ids]
    pck = pck_bbox_per_axis(gt, results, thr=0.2)
    print(f"overfit 8 persons: PCK@0.2 {pck['pck']:.3f} ({pck['correct']}/{pck['total']})")
    assert pck["total"] > 50
    assert pck["pck"] >= 0.9, pck
    # sanity: an untrained model is far from that
    untrained = predict_instances(build_model(cfg), ds, flip_test=False)[0]
    assert pck_bbox_per_axis(gt, untrained, thr=0.2)["pck"] < 0.5
