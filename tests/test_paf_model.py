"""Bottom-up PAF model: stages, weights round trip, whole-image samples with masks, training through
`pyramidpose train` (kind: paf) and `predict` without boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pyramidpose import cli
from pyramidpose.codecs.paf import PafCodec
from pyramidpose.data.bottomup import BottomUpDataset, paf_loss
from pyramidpose.errors import CheckpointError
from pyramidpose.models.paf_model import create_paf_model, is_paf_checkpoint, load_paf_model, save_paf_model

DATA = Path(__file__).parent / "data" / "coco"


def test_model_stages_and_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_paf_model(input_size=(64, 64), channels=16, stages=3).eval()
    x = torch.randn(2, 3, 64, 64)
    stages = model.forward_stages(x)
    assert len(stages) == 3 and stages[-1].shape == (2, 17 + 2 * 31, 16, 16)
    assert torch.equal(model(x), stages[-1])
    path = save_paf_model(model, tmp_path / "paf.safetensors")
    assert is_paf_checkpoint(path)
    again = load_paf_model(path)
    assert torch.equal(again(x), model(x))
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    assert not is_paf_checkpoint(tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not a PAF model"):
        load_paf_model(tmp_path / "other.safetensors")
    # a PAF file whose stored config the model rejects: a CheckpointError naming the file (not a ConfigError)
    from pyramidpose.utils.weights_io import write_weights

    bad = write_weights(tmp_path / "bad.safetensors", model, "paf", {**model.config.to_dict(), "no_such_field": 1})
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: bad PAF model config"):
        load_paf_model(bad)


def test_whole_image_samples_mask_crowds_and_unlabelled_people(tmp_path: Path) -> None:
    coco = json.loads((DATA / "person_keypoints_mini.json").read_text())
    im = coco["images"][0]
    # an unlabelled person (no keypoints) covering the top-left quarter of the first image
    w, h = im["width"], im["height"]
    coco["annotations"].append({
        "id": 1, "image_id": im["id"], "category_id": 1, "iscrowd": 0, "num_keypoints": 0,
        "keypoints": [0] * 51, "bbox": [0, 0, w / 2, h / 2], "area": w * h / 4,
        "segmentation": [[0, 0, w / 2, 0, w / 2, h / 2, 0, h / 2]],
    })  # fmt: skip
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(coco))
    codec = PafCodec(heatmap_size=(32, 32))
    ds = BottomUpDataset(
        ann, DATA / "images", codec, scale_factor=0, rot_factor=0, flip_prob=0, shift_factor=0
    )
    s = ds[(0, (0, 0, 0))]
    assert s["image"].shape == (3, 128, 128) and s["target"].shape == (79, 32, 32)
    mask = s["mask"][0]
    # the image (480 x 640) is centred: its top-left quarter ends at output x ~ 4 + 12, y ~ 16
    assert mask[2:14, 6:14].max() == 0 and mask[20:, :].min() == 1
    assert s["target"][:17].max() > 0.9  # the labelled people are encoded
    flipped = BottomUpDataset(
        ann, DATA / "images", codec, scale_factor=0, rot_factor=0, flip_prob=1.0, shift_factor=0
    )
    sf = flipped[(0, (0, 0, 0))]
    # flipping mirrors the image and swaps left/right channels: left shoulder <-> right shoulder
    for a, b in ((5, 6), (6, 5), (0, 0)):
        ya, xa = np.unravel_index(sf["target"][a].argmax(), (32, 32))
        yb, xb = np.unravel_index(s["target"][b][:, ::-1].argmax(), (32, 32))
        assert abs(ya - yb) + abs(xa - xb) <= 1
    stages = [torch.zeros(1, 79, 32, 32), torch.as_tensor(s["target"])[None]]
    loss = paf_loss(stages, torch.as_tensor(s["target"])[None], torch.as_tensor(s["mask"])[None])
    assert loss.item() > 0 and paf_loss(stages[1:], stages[1], torch.ones(1, 1, 32, 32)).item() == 0


def test_train_then_predict_without_boxes(tmp_path: Path, one_thread: None) -> None:
    cfg = tmp_path / "paf.yaml"
    cfg.write_text(
        "kind: paf\nmodel: {backbone: tiny, input_size: [64, 64], channels: 16, stages: 2}\n"
        f"data: {{root: {DATA}, train_ann: person_keypoints_mini.json, train_images: images,"
        " val_ann: person_keypoints_mini.json, val_images: images, cache_images: true}\n"
        "optim: {lr: 1.0e-3, warmup_iters: 1}\ntrain: {epochs: 1, batch_size: 2, threads: 1}\n"
    )
    assert cli.main(["train", str(cfg), "--work-dir", str(tmp_path / "run")]) == 0
    weights = tmp_path / "run" / "model_last.safetensors"
    assert is_paf_checkpoint(weights) and (tmp_path / "run" / "metrics.csv").is_file()
    out = tmp_path / "res.json"
    rc = cli.main(["predict", "--weights", str(weights), "--input", str(DATA / "images"), "--out", str(out),
                   "--device", "cpu", "--no-progress"])  # fmt: skip
    assert rc == 0
    res = json.loads(out.read_text())
    assert isinstance(res, list)
    assert all(len(r["keypoints"]) == 51 and r["image_id"] in (183709, 229358, 434204) for r in res)
    assert cli.main(["eval", "--gt", str(DATA / "person_keypoints_mini.json"), "--pred", str(out)]) == 0
