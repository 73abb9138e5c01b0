"""`pyramidpose predict` on real COCO images: valid COCO results, counts, bad images and boxes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pyramidpose import cli

DATA = Path(__file__).parent / "data" / "coco"
ANN = DATA / "person_keypoints_mini.json"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    import pyramidpose

    torch.manual_seed(0)
    model = pyramidpose.create_model("vitpose-tiny", num_keypoints=17, input_size=(128, 96))
    return pyramidpose.save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "images"
    shutil.copytree(DATA / "images", d)
    (d / "000000999999.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    return d


def _gt() -> dict:
    return json.loads(ANN.read_text())


def _check_results(results: list, gt: dict, n_expected: int, boxes_by_image: dict) -> None:
    assert isinstance(results, list) and len(results) == n_expected
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    for r in results:
        assert set(r) == {"image_id", "category_id", "keypoints", "score"}
        assert r["category_id"] == 1 and len(r["keypoints"]) == 17 * 3
        kp = np.asarray(r["keypoints"]).reshape(17, 3)
        assert np.isfinite(kp).all() and 0 <= r["score"] <= 1
        w, h = sizes[r["image_id"]]
        # every keypoint lies in the padded crop of one of the image's boxes, clipped to the image
        ok = np.zeros(17, bool)
        for x, y, bw, bh in boxes_by_image[r["image_id"]]:
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
            cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, 1.25 * max(x1 - x0, (y1 - y0) * 0.75) / 0.75
            ok |= (np.abs(kp[:, 0] - cx) <= s * 0.375 + 1) & (np.abs(kp[:, 1] - cy) <= s / 2 + 1)
        assert ok.all()
        # and, as the crops mostly lie inside these images, nearly all of them are inside the image
        inside = (kp[:, 0] >= -0.5) & (kp[:, 0] <= w - 0.5) & (kp[:, 1] >= -0.5) & (kp[:, 1] <= h - 0.5)
        assert inside.mean() > 0.5


def test_predict_with_ground_truth_boxes(tmp_path: Path, weights: Path, image_dir: Path, capsys) -> None:
    gt = _gt()
    # list the corrupt file as a fourth image with one person box
    gt["images"].append({"id": 999999, "file_name": "000000999999.jpg", "width": 100, "height": 100})
    gt["annotations"].append({"id": 1, "image_id": 999999, "category_id": 1, "iscrowd": 0, "bbox": [1, 1, 50, 80]})
    ann = tmp_path / "gt.json"
    ann.write_text(json.dumps(gt))
    out = tmp_path / "res.json"
    draw = tmp_path / "draw"
    argv = ["predict", "--weights", str(weights), "--image-dir", str(image_dir), "--boxes", str(ann),
            "--out", str(out), "--draw", str(draw), "--batch-size", "4", "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 3  # done, one input skipped
    captured = capsys.readouterr()
    assert "000000999999.jpg" in captured.err and captured.err.count("skipped ") == 1
    n_boxes = sum(1 for a in _gt()["annotations"] if not a["iscrowd"])
    assert f"3 images with {n_boxes} people; {n_boxes} boxes (0 zero-area); 1 item skipped" in captured.out
    boxes = {}
    for a in _gt()["annotations"]:
        boxes.setdefault(a["image_id"], []).append(a["bbox"])
    results = json.loads(out.read_text())
    _check_results(results, _gt(), n_boxes, boxes)
    assert sorted(p.name for p in draw.iterdir()) == sorted(
        im["file_name"].replace(".jpg", "_pose.jpg") for im in _gt()["images"]
    )
    # pycocotools accepts the file as keypoint results for these images
    from pycocotools.coco import COCO

    coco = COCO(str(ANN))
    dt = coco.loadRes(str(out))
    assert len(dt.getAnnIds()) == n_boxes


def test_predict_with_detection_results(tmp_path: Path, weights: Path, image_dir: Path, capsys) -> None:
    gt = _gt()
    dets = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.5 + 0.02 * i}
        for i, a in enumerate(gt["annotations"][:6])
    ]
    dets += [
        {"image_id": 229358, "category_id": 1, "bbox": [10, 10, 0, 50], "score": 0.9},  # zero area
        {"image_id": 229358, "category_id": 1, "bbox": [5000, 10, 30, 50], "score": 0.9},  # outside
        {"image_id": 229358, "category_id": 1, "bbox": [10, 10, 30, 50], "score": 0.1},  # below --det-thr
        {"image_id": 229358, "category_id": 3, "bbox": [10, 10, 30, 50], "score": 0.9},  # not a person
        {"image_id": 999999, "category_id": 1, "bbox": [1, 1, 30, 50], "score": 0.9},  # corrupt image
        {"image_id": 123, "category_id": 1, "bbox": [1, 1, 30, 50], "score": 0.9},  # no such file
    ]
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    out = tmp_path / "res.json"
    argv = ["predict", "--weights", str(weights), "--image-dir", str(image_dir), "--boxes", str(det_file),
            "--out", str(out), "--det-thr", "0.3", "--no-flip", "--decode", "dark_udp", "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 3  # done, two inputs skipped
    captured = capsys.readouterr()
    # the corrupt image and the image id without a file are reported
    assert captured.err.count("skipped ") == 2 and "image_id 123" in captured.err
    assert "000000999999.jpg" in captured.err
    assert "3 images with 6 people; 8 boxes (2 zero-area); 2 items skipped" in captured.out
    results = json.loads(out.read_text())
    boxes = {}
    for d in dets[:6]:
        boxes.setdefault(d["image_id"], []).append(d["bbox"])
    _check_results(results, gt, 6, boxes)
    # instance score = box score x mean keypoint score above 0.2
    r = results[0]
    ks = np.asarray(r["keypoints"][2::3])
    box_score = next(d["score"] for d in dets if d["image_id"] == r["image_id"])
    expect = box_score * (ks[ks > 0.2].mean() if (ks > 0.2).any() else 0.0)
    assert r["score"] == pytest.approx(expect, rel=1e-3, abs=1e-4)


def test_bad_boxes_file_is_a_clear_error(tmp_path: Path, weights: Path, image_dir: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "coco"}')
    argv = ["predict", "--weights", str(weights), "--image-dir", str(image_dir), "--boxes", str(bad),
            "--out", str(tmp_path / "o.json")]  # fmt: skip
    assert cli.main(argv) == 2
    assert "bad.json" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
