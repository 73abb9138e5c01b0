"""Box files for the image-set flow (detections, GT, MMPose GT protocol) and per-image OKS-NMS."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pyramidpose.errors import DataError
from pyramidpose.inference.image_set import apply_oks_nms, load_box_file
from pyramidpose.inference.results import PoseResult

DATA = Path(__file__).parent / "data" / "coco"
ANN = DATA / "person_keypoints_mini.json"


def test_gt_boxes_all_and_mmpose_protocol() -> None:
    gt = json.loads(ANN.read_text())
    jobs, missing = load_box_file(ANN, DATA / "images")
    assert not missing and len(jobs) == 3
    assert sum(len(j.boxes) for j in jobs) == sum(1 for a in gt["annotations"] if not a["iscrowd"])
    assert all((j.scores == 1).all() for j in jobs)
    jobs_m, _ = load_box_file(ANN, DATA / "images", mmpose_gt=True)
    with_kps = [a for a in gt["annotations"] if a["num_keypoints"] > 0]
    assert sum(len(j.boxes) for j in jobs_m) == len(with_kps)
    a = with_kps[0]
    job = next(j for j in jobs_m if j.image_id == a["image_id"])
    x, y, w, h = a["bbox"]
    assert any(np.allclose(b, [x, y, w - 1, h - 1]) for b in job.boxes)


def test_detection_file_matching_and_errors(tmp_path: Path) -> None:
    dets = [
        {"image_id": 229358, "bbox": [1, 2, 3, 4], "score": 0.8},
        {"image_id": 229358, "bbox": [1, 2, 3, 4], "score": 0.2},
        {"image_id": 42, "bbox": [1, 2, 3, 4], "score": 0.9},
    ]
    f = tmp_path / "d.json"
    f.write_text(json.dumps(dets))
    jobs, missing = load_box_file(f, DATA / "images", det_thr=0.5)
    assert [(j.image_id, j.path.name, len(j.boxes)) for j in jobs] == [(229358, "000000229358.jpg", 1)]
    assert len(missing) == 1 and "42" in missing[0][0]
    f.write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3], "score": 1}]))
    with pytest.raises(DataError, match="bbox"):
        load_box_file(f, DATA / "images")
    f.write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_box_file(f, DATA / "images")


def test_oks_nms_drops_duplicates_only() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(100, 200, (17, 2))
    kps = np.stack([base, base + 0.5, base + 300]).astype(np.float32)
    res = PoseResult(
        keypoints=kps,
        keypoint_scores=np.ones((3, 17), np.float32),
        bboxes=np.array([[90, 90, 120, 120]] * 3, np.float32),
        box_scores=np.ones(3, np.float32),
        scores=np.array([0.5, 0.9, 0.7], np.float32),
        box_indices=np.arange(3),
    )
    kept = apply_oks_nms(res, SimpleNamespace(input_size=(256, 192), padding=1.25), 0.9)
    np.testing.assert_array_equal(kept.box_indices, [1, 2])  # the lower-scored duplicate goes
