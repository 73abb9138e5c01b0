"""Must show 3 of issue 11: ``predict`` has one flow, and it honours duplicated boxes + ``--oks-nms``,
``--det-thr``, ``--mmpose-gt-boxes`` and boxes files whose image ids are not file names, giving what
the lower-level functions (TopDownPredictor + OKS-NMS, boxes parsed here by hand) give."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _coco_subset import coco_subset

from pyramidpose import cli

OKS_THR = 0.9
DET_THR = 0.1


@pytest.fixture(scope="module")
def setup(coco_mini: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    import torch

    import pyramidpose

    tmp = tmp_path_factory.mktemp("flow")
    ann, folder = coco_subset(coco_mini, "val", 8, tmp)
    torch.manual_seed(0)
    model = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48))
    with torch.no_grad():  # heatmap maxima above the rescoring threshold: instance scores are not all 0
        [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1].bias.add_(0.3)
    weights = pyramidpose.save_model(model, tmp / "m.safetensors")
    gt = json.loads(ann.read_text())
    dets = []
    for k, a in enumerate(a for a in gt["annotations"] if not a["iscrowd"]):
        x, y, w, h = a["bbox"]
        s = 0.9 - 0.005 * k
        dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": [x, y, w, h], "score": s})
        dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": [x, y, w, h], "score": s * 0.9})  # duplicate
        dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": [x + 2, y + 1, w, h], "score": s * 0.95})
        dets.append({"image_id": a["image_id"], "category_id": 1, "bbox": [x + 30, y, w, h], "score": 0.05})
    det_file = tmp / "dets.json"
    det_file.write_text(json.dumps(dets))
    return {"tmp": tmp, "ann": ann, "folder": folder, "weights": weights, "gt": gt, "dets": dets, "det_file": det_file}


def _reference(setup: dict, boxes_by_id: dict, oks_thr: float | None) -> list[dict]:
    """COCO results from the lower-level functions: the predictor over the images in file order
    (the batches the pipeline forms), then MMPose's OKS-NMS with crop areas."""
    from pyramidpose import load_model
    from pyramidpose.data.images import read_image
    from pyramidpose.evaluation.nms import oks_nms
    from pyramidpose.geometry.crops import box_to_center_scale
    from pyramidpose.inference.topdown import TopDownPredictor
    from pyramidpose.skeletons import COCO

    predictor = TopDownPredictor(load_model(setup["weights"]), batch_size=32)
    by_name = {im["file_name"]: im["id"] for im in setup["gt"]["images"]}
    files = sorted(setup["folder"].iterdir())
    ids = [by_name[f.name] for f in files]
    items = []
    for f, iid in zip(files, ids):
        b, s = boxes_by_id.get(iid, ([], []))
        items.append((read_image(f), np.asarray(b, float).reshape(-1, 4), np.asarray(s, float)))
    out = []
    for iid, res in zip(ids, predictor.predict_many(items)):
        if oks_thr is not None and len(res) > 1:
            _, scales = box_to_center_scale(res.bboxes, 48 / 64, 1.25)
            keep = oks_nms(res.keypoints, res.scores, scales.prod(1), thr=oks_thr, sigmas=COCO.sigmas_array())
            res = res.select(np.sort(np.asarray(keep)))
        out += res.to_coco(iid)
    return out


def _run(setup: dict, name: str, *args: str, code: int = 0) -> list[dict]:
    out = setup["tmp"] / f"{name}.json"
    argv = ["predict", "--weights", str(setup["weights"]), "--out", str(out), "--no-progress", *args]
    assert cli.main(argv) == code
    return json.loads(out.read_text())


def _assert_same(got: list[dict], ref: list[dict]) -> float:
    assert len(got) == len(ref) > 0
    key = lambda r: (r["image_id"], r["keypoints"][:2], -r["score"])  # noqa: E731
    got, ref = sorted(got, key=key), sorted(ref, key=key)
    assert [r["image_id"] for r in got] == [r["image_id"] for r in ref]
    diff = max(np.abs(np.subtract(a["keypoints"], b["keypoints"])).max() for a, b in zip(got, ref))
    assert diff <= 1e-3 and max(abs(a["score"] - b["score"]) for a, b in zip(got, ref)) <= 1e-6
    return float(diff)


def test_duplicated_boxes_oks_nms_and_det_thr(setup: dict) -> None:
    kept = [d for d in setup["dets"] if d["score"] >= DET_THR]
    boxes: dict = {}
    for d in kept:
        b, s = boxes.setdefault(d["image_id"], ([], []))
        b.append(d["bbox"])
        s.append(d["score"])
    ref = _reference(setup, boxes, OKS_THR)
    got = _run(setup, "dups", "--input", str(setup["folder"]), "--boxes", str(setup["det_file"]),
               "--oks-nms", str(OKS_THR), "--det-thr", str(DET_THR))  # fmt: skip
    _assert_same(got, ref)
    assert len(ref) <= len(kept) * 2 // 3  # OKS-NMS removed (at least) the exact duplicates
    assert min(r["score"] for r in got) > 0
    # --image-dir is the same flow
    assert _run(setup, "alias", "--image-dir", str(setup["folder"]), "--boxes", str(setup["det_file"]),
                "--oks-nms", str(OKS_THR), "--det-thr", str(DET_THR)) == got  # fmt: skip
    # without OKS-NMS every kept box gives a pose
    assert len(_run(setup, "all", "--input", str(setup["folder"]), "--boxes", str(setup["det_file"]),
                    "--det-thr", str(DET_THR))) == len(kept)  # fmt: skip


def test_mmpose_gt_boxes(setup: dict) -> None:
    sizes = {im["id"]: (im["width"], im["height"]) for im in setup["gt"]["images"]}
    boxes: dict = {}
    for a in setup["gt"]["annotations"]:  # MMPose's TopDownCocoDataset, written out by hand
        if a["iscrowd"] or max(a["keypoints"]) == 0 or a["num_keypoints"] == 0 or a["area"] <= 0:
            continue
        w_img, h_img = sizes[a["image_id"]]
        x, y, w, h = a["bbox"]
        x1, y1 = max(0, x), max(0, y)
        x2, y2 = min(w_img - 1, x1 + max(0, w - 1)), min(h_img - 1, y1 + max(0, h - 1))
        if x2 > x1 and y2 > y1:
            b, s = boxes.setdefault(a["image_id"], ([], []))
            b.append([x1, y1, x2 - x1, y2 - y1])
            s.append(1.0)
    ref = _reference(setup, boxes, None)
    got = _run(setup, "gt", "--input", str(setup["folder"]), "--boxes", str(setup["ann"]), "--mmpose-gt-boxes")
    _assert_same(got, ref)
    assert len(got) == sum(len(b) for b, _ in boxes.values())


def test_ids_that_are_not_file_names(setup: dict, capsys) -> None:
    """Renamed image files: an annotation file (--images-from) names them; results keep the COCO ids."""
    renamed = setup["tmp"] / "renamed"
    renamed.mkdir()
    table = dict(setup["gt"])
    table["images"] = []
    for k, im in enumerate(sorted(setup["gt"]["images"], key=lambda im: im["file_name"])):
        shutil.copy(setup["folder"] / im["file_name"], renamed / f"photo_{k:02d}.jpg")
        table["images"].append({**im, "file_name": f"photo_{k:02d}.jpg"})
    table_file = setup["tmp"] / "renamed.json"
    table_file.write_text(json.dumps(table))
    args = ("--boxes", str(setup["det_file"]), "--oks-nms", str(OKS_THR), "--det-thr", str(DET_THR))
    got = _run(setup, "renamed", "--input", str(renamed), "--images-from", str(table_file), *args)
    _assert_same(got, _run(setup, "named", "--input", str(setup["folder"]), *args))
    # without the table the ids cannot be matched: nothing is predicted and every id is reported
    capsys.readouterr()
    assert _run(setup, "unmatched", "--input", str(renamed), *args, code=3) == []  # 3: inputs were skipped
    err = capsys.readouterr().err
    assert all(f"image_id {im['id']}:" in err for im in setup["gt"]["images"])


def test_options_that_cannot_apply_are_refused(setup: dict, capsys) -> None:
    base = ["predict", "--input", str(setup["folder"]), "--out", str(setup["tmp"] / "x.json")]
    assert cli.main([*base, "--mmpose-gt-boxes"]) == 2
    assert "--mmpose-gt-boxes needs --boxes" in capsys.readouterr().err
    assert cli.main([*base, "--weights", str(setup["weights"]), "--boxes", str(setup["det_file"]), "--mmpose-gt-boxes"]) == 2
    assert "needs a COCO annotation file" in capsys.readouterr().err
    assert cli.main([*base, "--decode", "msra"]) == 2  # no --weights: the embedded model has no heatmaps
    assert "apply to heatmap checkpoints" in capsys.readouterr().err
    assert cli.main([*base, "--weights", "blazepose-fast", "--batch-size", "8"]) == 2  # a preset, not a checkpoint
    assert "--batch-size apply to heatmap checkpoints" in capsys.readouterr().err
    assert cli.main([*base, "--weights", str(setup["weights"]), "--boxes", str(setup["det_file"]), "--oks-nms", "1.5"]) == 2
    assert "--oks-nms must be in (0, 1]" in capsys.readouterr().err
    assert not (setup["tmp"] / "x.json").exists()
