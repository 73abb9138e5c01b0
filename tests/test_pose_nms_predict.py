"""`predict --pose-nms`: duplicated boxes give duplicated poses, which each pose NMS removes as its
function says (parametric: the hand-worked case of tests/test_nms.py, identical poses eliminated)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyramidpose import cli
from pyramidpose.evaluation.nms import parametric_pose_nms

DATA = Path(__file__).parent / "data" / "coco"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    import pyramidpose

    torch.manual_seed(0)
    model = pyramidpose.create_model("vitpose-tiny", num_keypoints=17, input_size=(128, 96))
    return pyramidpose.save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def _run(weights: Path, boxes: Path, out: Path, *extra: str) -> list[dict]:
    rc = cli.main([
        "predict", "--weights", str(weights), "--image-dir", str(DATA / "images"), "--boxes", str(boxes),
        "--out", str(out), "--device", "cpu", "--no-progress", *extra,
    ])  # fmt: skip
    assert rc == 0
    return json.loads(out.read_text())


def test_duplicated_boxes_are_removed_by_each_pose_nms(weights: Path, tmp_path: Path) -> None:
    gt = json.loads((DATA / "person_keypoints_mini.json").read_text())
    people = [
        a for a in gt["annotations"] if a.get("num_keypoints", 0) > 0 and a["bbox"][2] * a["bbox"][3] > 2000
    ]
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9} for a in people]
    dets += [{**d, "score": 0.8} for d in dets]  # every box twice
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(dets))
    plain = _run(weights, boxes, tmp_path / "plain.json")
    assert len(plain) == 2 * len(people)
    par = _run(weights, boxes, tmp_path / "par.json", "--pose-nms", "parametric")
    assert len(par) == len(people)  # each duplicate eliminated, every person kept
    # exactly the function's choice, image by image
    for iid in {d["image_id"] for d in dets}:
        rows = [r for r in plain if r["image_id"] == iid]
        kp = np.array([r["keypoints"] for r in rows]).reshape(len(rows), 17, 3)
        b = np.array([d["bbox"] for d in dets if d["image_id"] == iid], float)
        keep = parametric_pose_nms(
            kp[..., :2], kp[..., 2], np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
        )
        expect = sorted(map(str, (rows[i]["keypoints"] for i in keep)))
        assert sorted(str(r["keypoints"]) for r in par if r["image_id"] == iid) == expect
    oks = _run(weights, boxes, tmp_path / "oks.json", "--pose-nms", "oks")
    assert len(oks) == len(people)
