"""COCO top-down dataset, sampler and decoding used by the trainer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pyramidpose.codecs import HeatmapCodec
from pyramidpose.data.coco import CocoKeypointDataset, ResumableDistributedSampler
from pyramidpose.errors import DataError


def _kp(points: dict[int, tuple[float, float]]) -> list[float]:
    out = [0.0] * 51
    for i, (x, y) in points.items():
        out[3 * i : 3 * i + 3] = [x, y, 2]
    return out


@pytest.fixture()
def tiny_coco(tmp_path: Path) -> tuple[Path, Path]:
    """Two images (one corrupt) and annotations that exercise every filter."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / "good.jpg"), rng.integers(0, 255, (120, 100, 3), dtype=np.uint8))
    (images / "bad.jpg").write_bytes(b"this is not a jpeg")
    body = {0: (50, 20), 5: (40, 40), 6: (60, 40), 11: (45, 80), 12: (55, 80), 15: (45, 110), 16: (55, 110)}
    anns = [
        {"id": 1, "image_id": 1, "bbox": [30, 10, 40, 105], "keypoints": _kp(body), "iscrowd": 0, "area": 4000},
        {"id": 2, "image_id": 2, "bbox": [30, 10, 40, 105], "keypoints": _kp(body), "iscrowd": 0, "area": 4000},
        {"id": 3, "image_id": 1, "bbox": [0, 0, 50, 50], "keypoints": _kp({0: (500, 20)}), "iscrowd": 0},  # outside
        {"id": 4, "image_id": 1, "bbox": [0, 0, 50, 50], "keypoints": _kp(body), "iscrowd": 1},  # crowd
        {"id": 5, "image_id": 1, "bbox": [0, 0, 50, 50], "keypoints": [0.0] * 51, "iscrowd": 0},  # unlabelled
        {"id": 6, "image_id": 1, "bbox": [0, 0, 50, 50], "keypoints": [1.0] * 12, "iscrowd": 0},  # wrong K
    ]
    coco = {
        "images": [
            {"id": 1, "file_name": "good.jpg", "width": 100, "height": 120},
            {"id": 2, "file_name": "bad.jpg", "width": 100, "height": 120},
        ],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person"}],
    }
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(coco))
    return ann, images


def test_filters_and_skip_counts(tiny_coco: tuple[Path, Path]) -> None:
    ann, images = tiny_coco
    ds = CocoKeypointDataset(ann, images, codec=HeatmapCodec((64, 48)))
    assert [i.ann_id for i in ds.instances] == [1, 2]
    assert ds.skipped["keypoints outside the image"] == 1
    assert sum(ds.skipped.values()) == 2  # outside + wrong keypoint count
    good, bad = ds[(0, (0, 0, 0))], ds[(1, (0, 0, 1))]
    assert good["valid"] and good["image"].shape == (3, 64, 48) and good["target"].shape == (17, 16, 12)
    assert good["target_weight"].sum() > 0
    assert not bad["valid"] and "bad.jpg" in bad["error"]
    assert bad["target_weight"].sum() == 0 and bad["target"].shape == (17, 16, 12)


def test_augmentation_depends_only_on_the_item_seed(tiny_coco: tuple[Path, Path]) -> None:
    ann, images = tiny_coco
    ds = CocoKeypointDataset(ann, images, codec=HeatmapCodec((64, 48)))
    a, b = ds[(0, (1, 2, 3))], ds[(0, (1, 2, 3))]
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["target"], b["target"])
    others = [ds[(0, (1, 2, p))]["image"] for p in range(4, 9)]
    assert any(not np.array_equal(a["image"], o) for o in others)


def test_sampler_ranks_partition_the_single_process_batches() -> None:
    n, b, world = 23, 3, 2
    single = ResumableDistributedSampler(n, b * world, 1, 0, seed=5)
    ranks = [ResumableDistributedSampler(n, b, world, r, seed=5) for r in range(world)]
    for s in (single, *ranks):
        s.set_epoch(3)
    one = list(single)
    parts = [list(r) for r in ranks]
    assert single.batches_per_epoch == ranks[0].batches_per_epoch == 4
    for k in range(single.batches_per_epoch):
        joint = sorted(x for p in parts for x in p[k * b : (k + 1) * b])
        assert joint == sorted(one[k * b * world : (k + 1) * b * world])
    assert {i for i, _ in one} == set(range(n))  # every person once, padded cyclically
    # resuming mid-epoch skips exactly the finished batches
    ranks[1].set_start(2)
    assert list(ranks[1]) == parts[1][2 * b :]
    # another epoch shuffles differently
    single.set_epoch(4)
    assert [i for i, _ in single] != [i for i, _ in one]


def test_missing_data_path_fails_before_training(tmp_path: Path) -> None:
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import train

    cfg = load_config(None, [f"data.root={tmp_path / 'nowhere'}"])
    with pytest.raises(DataError, match="data.train_ann"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_bad_samples_are_reported_at_the_end_of_the_epoch(tiny_coco: tuple[Path, Path], tmp_path: Path) -> None:
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import train

    ann, images = tiny_coco
    cfg = load_config(
        None,
        [
            f"data.root={ann.parent}", "data.train_ann=ann.json", "data.train_images=images", "data.val_ann=null",
            "model.name=vitpose-tiny", "model.head=simple", "model.input_size=[64,48]", "data.num_workers=0",
            "train.batch_size=2", "train.epochs=1", "train.threads=1", "train.tensorboard=false",
        ],
    )  # fmt: skip
    out = train(cfg, tmp_path / "run")
    assert out["step"] == 1 and out["skipped"] == 1 and np.isfinite(out["loss"])
    log = (tmp_path / "run" / "train.log").read_text()
    assert "skipped 2 annotations" in log and "skipped 1 bad samples" in log and "bad.jpg" in log
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,loss") and rows[1].split(",")[-1] == "1"


def test_decoding_ground_truth_heatmaps_gives_near_perfect_ap(coco_mini: Path) -> None:
    from pyramidpose.inference.results import rescore
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import make_dataset
    from pyramidpose.training.validation import coco_ap

    for codec in ("udp", "msra"):
        cfg = load_config(None, [f"data.root={coco_mini}", "model.input_size=[256,192]", f"model.codec={codec}"])
        ds = make_dataset(cfg, False)
        gt = {a["id"]: a for a in json.loads(ds.ann_file.read_text())["annotations"]}
        assert ds.codec.udp == (codec == "udp") and ds.codec.input_size == (256, 192)
        hms, cs, ss = [], [], []
        for inst in ds.instances:
            c, s = ds._center_scale(inst)
            kp = np.asarray(gt[inst.ann_id]["keypoints"], float).reshape(-1, 3)
            hm, _ = ds.codec.encode(ds.codec.image_to_input(kp[:, :2], c, s), kp[:, 2])
            hms.append(hm)
            cs.append(c)
            ss.append(s)
        coords, maxvals = ds.codec.decode(np.stack(hms))
        pts = ds.codec.to_image(coords, np.stack(cs), np.stack(ss))
        scores = rescore(np.ones(len(pts)), maxvals)
        res = [
            {"image_id": inst.image_id, "category_id": 1, "score": float(sc),
             "keypoints": np.concatenate([p, m[:, None]], 1).ravel().tolist()}
            for inst, p, m, sc in zip(ds.instances, pts, maxvals, scores)
        ]  # fmt: skip
        assert coco_ap(ds.ann_file, res)["AP"] > 0.97, codec


def test_unreadable_annotation_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    bad = tmp_path / "a.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="a.json"):
        CocoKeypointDataset(bad, tmp_path / "img")
