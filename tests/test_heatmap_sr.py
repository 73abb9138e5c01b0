"""Heatmap super-resolution: geometry of the interpolation, learning, saving/loading, training on a
model's own outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pyramidpose.codecs.heatmap import HeatmapCodec
from pyramidpose.data.coco import Instance
from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.models.heatmap_sr import HeatmapSR, HeatmapSRConfig, load_heatmap_sr, save_heatmap_sr
from pyramidpose.training.heatmap_sr import HeatmapSRTrainConfig, crop_keypoints, encode_at, train_heatmap_sr

DATA = Path(__file__).parent / "data" / "coco"


def _people(n: int = 24, seed: int = 0) -> list[Instance]:
    """Synthetic labelled people (random boxes, keypoints inside them); no images needed."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y, w, h = rng.uniform(0, 200), rng.uniform(0, 200), rng.uniform(40, 120), rng.uniform(80, 240)
        kp = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.full(17, 2.0)], 1)
        out.append(Instance(image_id=i, image_path="", bbox=np.array([x, y, w, h]), keypoints=kp))
    return out


@pytest.mark.parametrize("udp", [True, False])
def test_untrained_network_is_interpolation_in_the_codec_geometry(udp: bool) -> None:
    """Zero-initialised reconstruction: the output is the interpolated map, so decoding it lands
    where decoding the low-resolution map does (both in stride-4 units)."""
    people = _people(8)
    kp, vis, _, _ = crop_keypoints(people, (256, 192), udp=udp)
    low, _ = encode_at(kp, vis, (256, 192), 16, udp=udp, sigma=2.0)
    sr = HeatmapSR(HeatmapSRConfig(factor=4, udp=udp, mode="bilinear"))
    with torch.no_grad():
        up = sr(torch.from_numpy(low)).numpy()
    assert up.shape == (8, 17, 64, 48)
    # the reference DARK step (no quarter-offset fallback): the test is about geometry, not the fallback
    c_low, _ = HeatmapCodec((256, 192), heatmap_size=(16, 12), udp=udp, blur_kernel=3, reference_refine=True).decode(low)
    c_up, _ = HeatmapCodec((256, 192), udp=udp, reference_refine=True).decode(up)
    to_input_low = (np.array([191, 255]) / np.array([11, 15])) if udp else 16.0
    to_input_up = (np.array([191, 255]) / np.array([47, 63])) if udp else 4.0
    inside = (kp[..., 0] > 16) & (kp[..., 0] < 176) & (kp[..., 1] > 16) & (kp[..., 1] < 240)
    err = np.abs(c_low * to_input_low - c_up * to_input_up)[inside]
    assert np.median(err) < 1.5  # same place; the wrong geometry is off by ~6 px (MSRA) / ~1.5 px spread


def test_training_on_ground_truth_beats_interpolation(one_thread) -> None:
    people = _people(64)
    cfg = HeatmapSRTrainConfig(low_stride=16, steps=20, batch_size=4, lr=3e-3)
    sr, losses = train_heatmap_sr(people, cfg, progress=False, log=lambda _: None)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    test = _people(16, seed=1)
    kp, vis, _, _ = crop_keypoints(test, (256, 192), udp=True)
    low, _ = encode_at(kp, vis, (256, 192), 16, udp=True, sigma=2.0)
    high, _ = encode_at(kp, vis, (256, 192), 4, udp=True, sigma=2.0)
    base = HeatmapSR(HeatmapSRConfig(factor=4))
    with torch.no_grad():
        err_sr = float(((sr(torch.from_numpy(low)) - torch.from_numpy(high)) ** 2).mean())
        err_up = float(((base(torch.from_numpy(low)) - torch.from_numpy(high)) ** 2).mean())
    assert err_sr < 0.7 * err_up, (err_sr, err_up)


def test_save_load_round_trip_and_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    sr = HeatmapSR(HeatmapSRConfig(factor=2, channels=(8, 4)))
    torch.nn.init.normal_(sr.reconstruct.weight)
    path = save_heatmap_sr(sr, tmp_path / "sr.safetensors")
    back = load_heatmap_sr(path)
    assert back.config == sr.config
    x = torch.rand(2, 17, 32, 24)
    with torch.no_grad():
        assert torch.equal(back(x), sr(x)) and back(x).shape == (2, 17, 64, 48)
    import pyramidpose

    pose = pyramidpose.save_model(pyramidpose.create_model("vitpose-tiny", input_size=(64, 48)), tmp_path / "pose.safetensors")
    with pytest.raises(CheckpointError, match="not a heatmap SR model"):
        load_heatmap_sr(pose)
    with pytest.raises(ConfigError, match="factor"):
        HeatmapSRConfig(factor=3)


def test_training_on_a_pose_models_own_heatmaps(one_thread) -> None:
    """``source=model``: the low-resolution input is the model's heatmaps of real crops."""
    import json

    import pyramidpose

    ann = json.loads((DATA / "person_keypoints_mini.json").read_text())
    files = {im["id"]: str(DATA / "images" / im["file_name"]) for im in ann["images"]}
    people = [
        Instance(image_id=a["image_id"], image_path=files[a["image_id"]], bbox=np.array(a["bbox"], float),
                 keypoints=np.array(a["keypoints"], float).reshape(17, 3))
        for a in ann["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]  # fmt: skip
    torch.manual_seed(0)
    model = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48)).eval()
    cfg = HeatmapSRTrainConfig(input_size=(64, 48), low_stride=8, steps=3, batch_size=4)
    sr, losses = train_heatmap_sr(people, cfg, source=model, progress=False, log=lambda _: None)
    assert sr.config.factor == 2 and len(losses) == 3 and all(np.isfinite(losses))


def test_topdown_predictor_runs_the_sr_stage_before_decoding() -> None:
    """A model whose heatmaps are stride 16: with the SR stage the predictor decodes stride-4 maps and
    lands on the keypoints; an SR model of the other geometry is refused."""
    from types import SimpleNamespace

    from pyramidpose.geometry.crops import box_to_center_scale, crop_to_image
    from pyramidpose.inference.topdown import TopDownPredictor

    rng = np.random.default_rng(0)
    kp_in = rng.uniform([20, 20], [170, 235], (17, 2))  # crop pixels of a 256x192 input
    low, _ = encode_at(kp_in[None], np.ones((1, 17)), (256, 192), 16, udp=True, sigma=2.0)

    class Stride16(torch.nn.Module):
        config = SimpleNamespace(input_size=(256, 192), codec="udp", keypoint_set="coco", num_keypoints=17)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(low).expand(x.shape[0], -1, -1, -1).clone()

    box = np.array([[40.0, 30.0, 150.0, 200.0]])
    c, s = box_to_center_scale(box, 192 / 256)
    expect = crop_to_image(kp_in[None] * [47 / 191, 63 / 255], c, s, (64, 48), udp=True)[0]
    image = np.zeros((300, 260, 3), np.uint8)
    sr = HeatmapSR(HeatmapSRConfig(factor=4, udp=True))
    stage = TopDownPredictor(Stride16(), flip_test=False, heatmap_sr=sr)
    res = stage.predict(image, box)
    assert stage.heatmaps(torch.zeros(1, 3, 256, 192)).shape == (1, 17, 64, 48)
    assert np.abs(res.keypoints[0] - expect).max() < 1.5
    with pytest.raises(ConfigError, match="geometry"):
        TopDownPredictor(Stride16(), flip_test=False, heatmap_sr=HeatmapSR(HeatmapSRConfig(udp=False)))
