"""Part-guided proposals: offsets, fitting, sampling, the shipped coco-mini fit, the dataset option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyramidpose.data.proposals import (
    ProposalModel,
    apply_offsets,
    box_offsets,
    collect_offsets,
    fit_proposals,
    part_group,
)
from pyramidpose.errors import DataError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "coco"


def test_offsets_round_trip_and_meaning() -> None:
    gt = np.array([[10.0, 20.0, 100.0, 200.0]])
    det = np.array([[20.0, 10.0, 200.0, 200.0]])  # twice as wide, centre 60 px right, 10 px up
    off = box_offsets(det, gt)
    assert off[0] == pytest.approx([0.6, -0.05, np.log(2.0), 0.0])
    assert apply_offsets(gt, off) == pytest.approx(det)


def test_part_groups() -> None:
    kp = np.zeros((17, 3))
    kp[[0, 5, 6, 13, 15], 2] = 2
    assert part_group(kp) == "full"
    kp[[13, 15], 2] = 0
    assert part_group(kp) == "upper"
    kp[:, 2] = 0
    kp[[11, 14], 2] = 1
    assert part_group(kp) == "lower"


def test_fit_recovers_the_offset_distribution_and_samples_it() -> None:
    rng = np.random.default_rng(0)
    mean = np.array([0.05, -0.02, 0.1, -0.05])
    sd = np.array([0.1, 0.05, 0.2, 0.1])
    samples = [("full", mean + sd * rng.standard_normal(4)) for _ in range(4000)]
    samples += [("upper", np.zeros(4)) for _ in range(3)]  # too few: left to the pooled fit
    model = fit_proposals(samples)
    assert set(model.mean) == {"all", "full"} and model.count["full"] == 4000
    assert np.asarray(model.mean["full"]) == pytest.approx(mean, abs=0.01)
    assert np.sqrt(np.diag(model.cov["full"])) == pytest.approx(sd, rel=0.05)
    kp = np.zeros((17, 3))
    kp[[0, 13], 2] = 2
    gt = np.array([0.0, 0.0, 100.0, 200.0])
    boxes = np.stack([model.sample(gt, kp, rng) for _ in range(2000)])
    assert box_offsets(boxes, np.tile(gt, (2000, 1))).mean(0) == pytest.approx(mean, abs=0.015)


def test_collect_offsets_matches_by_iou() -> None:
    gt = [np.array([0.0, 0.0, 100.0, 200.0]), np.array([300.0, 0.0, 100.0, 200.0])]
    kps = [np.ones((17, 3)), np.ones((17, 3))]

    def detector(_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # one box near person 2, one nowhere
        return np.array([[310.0, 0.0, 100.0, 200.0], [700.0, 700.0, 50.0, 50.0]]), np.array([0.9, 0.8])

    out = collect_offsets([(np.zeros((10, 10, 3)), gt, kps)], detector)
    assert len(out) == 1 and out[0][0] == "full" and out[0][1] == pytest.approx([0.1, 0, 0, 0])


def test_shipped_fit_loads_and_bad_files_are_refused(tmp_path: Path) -> None:
    model = ProposalModel.load(REPO / "configs" / "proposals_coco_mini.json")
    assert model.count["all"] >= 10 and "blazepose" in model.source
    bad = tmp_path / "p.json"
    bad.write_text('{"mean": {"all": [0, 0, 0]}, "cov": {"all": [[1]]}}')
    with pytest.raises(DataError, match="group 'all'"):
        ProposalModel.load(bad)
    bad.write_text("not json")
    with pytest.raises(DataError, match="not a readable proposal model"):
        ProposalModel.load(bad)


def test_dataset_takes_crops_around_sampled_proposals() -> None:
    from pyramidpose.codecs.heatmap import HeatmapCodec
    from pyramidpose.data.coco import CocoKeypointDataset

    model = fit_proposals(
        [("full", np.array([0.3, 0.0, 0.0, 0.0]))] * 2 + [("full", np.array([0.3, 0, 0, 1e-3]))]
    )
    common = dict(
        ann_file=DATA / "person_keypoints_mini.json", image_dir=DATA / "images", codec=HeatmapCodec(input_size=(64, 48)),
        flip_prob=0.0, half_body_prob=0.0, scale_factor=0.0, rot_prob=0.0,
    )  # fmt: skip
    plain = CocoKeypointDataset(**common)[(0, (1, 2, 3))]
    moved = CocoKeypointDataset(**common, proposals=model, proposal_prob=1.0)[(0, (1, 2, 3))]
    # the box moved right by 0.3 of its width: the person's heatmap peaks move left in the crop
    px = plain["target"].reshape(17, -1).argmax(1) % 12
    mx = moved["target"].reshape(17, -1).argmax(1) % 12
    w = plain["target_weight"] * moved["target_weight"] > 0
    assert (mx[w] < px[w]).mean() > 0.8
