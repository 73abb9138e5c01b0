"""The one box-file reader (detections, GT, MMPose GT protocol, id -> file matching) and OKS-NMS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyramidpose.data.boxes import load_box_file, mmpose_gt_box
from pyramidpose.errors import DataError
from pyramidpose.inference.results import PoseResult

DATA = Path(__file__).parent / "data" / "coco"
ANN = DATA / "person_keypoints_mini.json"


def test_gt_boxes_all_and_mmpose_protocol() -> None:
    gt = json.loads(ANN.read_text())
    bf = load_box_file(ANN)
    assert bf.kind == "annotations" and len(bf.image_ids()) == 3
    assert sum(len(bf.get(i)[0]) for i in bf.image_ids()) == sum(1 for a in gt["annotations"] if not a["iscrowd"])
    assert all((bf.get(i)[1] == 1).all() for i in bf.image_ids())
    # files are matched through the annotation file's file names
    im = gt["images"][0]
    assert bf.image_id_for(DATA / "images" / im["file_name"]) == im["id"]
    bm = load_box_file(ANN, mmpose_gt=True)
    with_kps = [a for a in gt["annotations"] if a["num_keypoints"] > 0]
    assert sum(len(bm.get(i)[0]) for i in bm.image_ids()) == len(with_kps)
    a = with_kps[0]
    x, y, w, h = a["bbox"]
    assert any(np.allclose(b, [x, y, w - 1, h - 1]) for b in bm.get(a["image_id"])[0])
    # the MMPose clip: to [0, W-1] x [0, H-1] and one pixel smaller; empty -> None
    np.testing.assert_allclose(mmpose_gt_box([-5, 10, 50, 200], 40, 100), [0, 10, 39, 89])
    assert mmpose_gt_box([50, 10, 5, 5], 40, 100) is None and mmpose_gt_box(["a", 1, 2, 3], 40, 100) is None


def test_detection_file_thresholds_categories_and_id_matching(tmp_path: Path) -> None:
    dets = [
        {"image_id": 229358, "bbox": [1, 2, 3, 4], "score": 0.8},
        {"image_id": 229358, "bbox": [1, 2, 3, 4], "score": 0.2},
        {"image_id": 229358, "category_id": 3, "bbox": [5, 5, 5, 5], "score": 0.99},  # a car
        {"image_id": 42, "bbox": [1, 2, 3, 4], "score": 0.9},
    ]
    f = tmp_path / "d.json"
    f.write_text(json.dumps(dets))
    bf = load_box_file(f, det_thr=0.5)
    assert bf.kind == "detections" and bf.image_ids() == [42, 229358]
    boxes, scores = bf.get(229358)
    assert boxes.tolist() == [[1, 2, 3, 4]] and scores.tolist() == [0.8]
    assert len(bf.get(12345)[0]) == 0
    # COCO file names -> integer ids
    assert bf.image_id_for(DATA / "images" / "000000229358.jpg") == 229358
    # ids that are not file names: an annotation file's image table names the files
    table = {42: {"id": 42, "file_name": "street/frame_0007.png"}}
    named = load_box_file(f, images=table)
    assert named.image_id_for(Path("/data/frame_0007.png")) == 42
    assert bf.image_id_for(Path("/data/frame_0007.png")) == "frame_0007"  # no table: the stem


def test_gt_annotations_without_crowds(tmp_path: Path) -> None:
    gt = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 9], "iscrowd": 0},
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},
        ],
    }
    f = tmp_path / "gt.json"
    f.write_text(json.dumps(gt))
    boxes, scores = load_box_file(f).get(1)
    assert boxes.tolist() == [[0, 0, 5, 9]] and scores.tolist() == [1.0]


@pytest.mark.parametrize(
    "content,match",
    [
        ("[{", "not valid JSON"),
        ('{"a": 1}', "expected a COCO detection-results list"),
        ('[{"bbox": [1, 2, 3, 4]}]', r"entry 0: expected an object with 'image_id'"),
        ('[{"image_id": 1, "bbox": [1, 2, 3], "score": 1}]', r"entry 0: 'bbox' must be a list"),
        ('[{"image_id": 1, "bbox": [1, 2, 3, "x"], "score": 1}]', "must hold numbers"),
        ('[{"image_id": 1, "bbox": [1, 2, 3, 4], "score": NaN}]', "'score' must be a finite number"),
        ('{"images": [{"id": 1}], "annotations": [{"image_id": 2, "bbox": [1, 2, 3, 4]}]}', "not listed in 'images'"),
    ],
)
def test_malformed_files_are_refused_naming_file_record_and_field(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(DataError, match=match) as e:
        load_box_file(f)
    assert "bad.json" in str(e.value)
    with pytest.raises(DataError, match="not found"):
        load_box_file(tmp_path / "missing.json")


def test_mmpose_gt_boxes_need_an_annotation_file(tmp_path: Path) -> None:
    f = tmp_path / "d.json"
    f.write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.8}]))
    with pytest.raises(DataError, match="annotation file"):
        load_box_file(f, mmpose_gt=True)


def test_oks_nms_drops_duplicates_only() -> None:
    from pyramidpose.skeletons import COCO

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
        areas=np.full(3, 150.0 * 200.0),
    )
    kept = res.oks_nms(0.9, COCO.sigmas_array())
    np.testing.assert_array_equal(kept.box_indices, [1, 2])  # the lower-scored duplicate goes
    np.testing.assert_array_equal(kept.areas, [30000.0, 30000.0])
    # a tiny OKS scale makes even the 0.5 px shifted duplicate a different pose
    res.areas = np.full(3, 1e-3)
    np.testing.assert_array_equal(res.oks_nms(0.9, COCO.sigmas_array()).box_indices, [0, 1, 2])
