"""The embedded ONNX backends: MoveNet decode, single-pose crops/batches, MultiPose, NanoDet, presets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyramidpose.codecs.movenet import decode_singlepose

pytest.importorskip("onnxruntime")
SAMPLES = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples"


def _image(name: str = "000000434204.jpg") -> np.ndarray:
    from pyramidpose.data.images import read_image

    return read_image(SAMPLES / name)


def test_decode_finds_the_keypoint_nearest_the_regressed_point():
    h = w = 16
    heat = np.zeros((1, 17, h, w), np.float32)
    centres = np.zeros((1, 1, h, w), np.float32)
    centres[0, 0, 8, 8] = 1.0
    regress = np.zeros((1, 34, h, w), np.float32)
    offsets = np.zeros((1, 34, h, w), np.float32)
    regress[0, 0, 8, 8], regress[0, 1, 8, 8] = -5.0, 2.0  # nose regressed to (3, 10)
    heat[0, 0, 3, 10] = 0.6  # the centred person's nose
    heat[0, 0, 14, 1] = 0.9  # a stronger nose far away (another person)
    offsets[0, 0, 3, 10], offsets[0, 1, 3, 10] = 0.25, -0.5
    out = decode_singlepose(heat, centres, regress, offsets)
    assert out.shape == (1, 17, 3)
    np.testing.assert_allclose(out[0, 0], [(3 + 0.25) / h, (10 - 0.5) / w, 0.6], rtol=1e-6)


def test_movenet_keypoints_land_in_their_boxes_and_batches_agree():
    from pyramidpose.inference.backends.movenet import MoveNetBackend

    image = _image()
    boxes = np.array(
        [[239, 1, 73, 151], [118, 5, 107, 220]], np.float64
    )  # two people of the sample (NanoDet)
    backend = MoveNetBackend("lightning", num_threads=1)
    res = backend.predict(image, boxes, np.array([0.9, 0.8]))
    assert len(res) == 2 and res.keypoints.shape == (2, 17, 2)
    for i, (x, y, w, h) in enumerate(boxes):
        kp = res.keypoints[i][res.keypoint_scores[i] > 0.3]
        inside = (
            (kp[:, 0] > x - 0.15 * w)
            & (kp[:, 0] < x + 1.15 * w)
            & (kp[:, 1] > y - 0.15 * h)
            & (kp[:, 1] < y + 1.15 * h)
        )
        assert inside.sum() >= 5 and inside.mean() >= 0.8
    one = backend.predict(image, boxes[1:], np.array([0.8]))
    np.testing.assert_allclose(one.keypoints[0], res.keypoints[1], atol=1e-3)
    assert 0.2 < res.scores[0] <= 0.9  # box score x mean confident keypoint score
    # a box outside the image is skipped and reported, not a crash
    out = backend.predict(image, np.array([[5000, 5000, 10, 10]]), None)
    assert len(out) == 0 and out.num_skipped_boxes == 1


def test_movenet_flip_test_mirrors_consistently():
    from pyramidpose.inference.backends.movenet import MoveNetBackend

    image = _image()
    box = np.array([[118, 5, 107, 220]], np.float64)
    backend = MoveNetBackend("lightning", flip_test=True, num_threads=1)
    a = backend.predict(image, box)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    mbox = box.copy()
    mbox[0, 0] = image.shape[1] - box[0, 0] - box[0, 2]
    b = backend.predict(mirrored, mbox)
    from pyramidpose.inference.backends.movenet import COCO_FLIP

    back = b.keypoints[0][COCO_FLIP].copy()
    back[:, 0] = image.shape[1] - back[:, 0]
    good = (a.keypoint_scores[0] > 0.3) & (b.keypoint_scores[0][COCO_FLIP] > 0.3)
    assert good.sum() >= 5
    assert np.abs(back[good] - a.keypoints[0][good]).max() < 4.0


def test_nanodet_finds_the_people_and_nothing_in_a_blank_image():
    from pyramidpose.inference.backends.nanodet import NanoDetDetector

    det = NanoDetDetector(num_threads=1)
    image = _image()
    boxes, scores = det.detect(image)
    assert (scores >= 0.3).sum() >= 2 and (np.diff(scores) <= 0).all()
    h, w = image.shape[:2]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= w + 1e-6).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + boxes[:, 3] <= h + 1e-6).all()
    b0, s0 = det.detect(np.zeros((300, 500, 3), np.uint8))
    assert len(b0) == 0 and len(s0) == 0


def test_multipose_is_bottom_up_and_finds_people():
    from pyramidpose.errors import ConfigError
    from pyramidpose.inference.backends.movenet_multipose import MultiPoseBackend

    with pytest.raises(ConfigError, match="multiple of 32"):
        MultiPoseBackend(input_size=250)
    mp = MultiPoseBackend(num_threads=1)
    assert not mp.needs_boxes
    res = mp.predict(_image(), None)
    assert len(res) >= 1 and res.keypoints.shape[1:] == (17, 2)
    h, w = _image().shape[:2]
    assert (res.bboxes[:, 0] + res.bboxes[:, 2] <= w + 1e-3).all()


def test_presets_and_unknown_names():
    from pyramidpose.errors import ConfigError
    from pyramidpose.inference.backends import DEFAULT_PRESET, PRESETS, load_backend, load_detector

    assert {"accurate", "fast", "bottomup", "blazepose"} <= set(PRESETS) and DEFAULT_PRESET == "accurate"
    assert load_backend("fast", num_threads=1).name == "movenet-lightning"
    assert PRESETS["bottomup"].detector is None and PRESETS["accurate"].detector == "nanodet"
    assert load_detector("nanodet", num_threads=1).name == "nanodet"
    with pytest.raises(ConfigError, match="unknown MoveNet variant"):
        load_backend("accurate", variant="huge")


def test_videos_default_to_the_fast_preset_images_to_accurate(tmp_path):
    from pyramidpose.inference.backends import DEFAULT_VIDEO_PRESET
    from pyramidpose.inference.pipeline import Pipeline, PipelineConfig

    assert DEFAULT_VIDEO_PRESET == "fast"
    default = Pipeline(PipelineConfig(out_dir=tmp_path, progress=False, num_threads=1))
    assert default._video_backend is None  # not loaded until a video needs it (image-only runs never do)
    assert default.backend.name == "movenet-thunder" and default.video_backend.name == "movenet-lightning"
    assert default.video_backend is default.video_backend  # built once
    named = Pipeline(PipelineConfig(out_dir=tmp_path, weights="accurate", progress=False, num_threads=1))
    assert named.video_backend is named.backend  # a named model is used on videos too


def test_predict_without_options_is_the_default_video_pipeline(tmp_path):
    from pyramidpose.commands.predict import build_parser, pipeline_config

    cfg = pipeline_config(build_parser().parse_args(["--input", "clip.mp4", "--out", str(tmp_path)]))
    assert cfg.weights is None and cfg.detect_every == 5 and cfg.max_people is None and cfg.mp4_preset == "ultrafast"
    cfg = pipeline_config(build_parser().parse_args(["-i", "c.mp4", "--max-people", "2", "--mp4-preset", "veryfast"]))
    assert cfg.max_people == 2 and cfg.mp4_preset == "veryfast"


def test_importing_the_backends_loads_no_optional_package():
    code = (
        "import sys, pyramidpose.inference.backends, pyramidpose.inference.backends.movenet, "
        "pyramidpose.inference.backends.movenet_multipose, pyramidpose.inference.backends.nanodet, "
        "pyramidpose.inference.pipeline, pyramidpose.commands.predict; "
        "print(sorted(m for m in ('mediapipe', 'ai_edge_litert', 'torch', 'tensorflow') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
