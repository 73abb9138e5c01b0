"""BlazePose run directly through TFLite: ROI geometry, decoding, flip, real-model behaviour."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pyramidpose.errors import MissingDependencyError
from pyramidpose.inference.backends import blazepose as bp
from pyramidpose.skeletons import BLAZEPOSE, COCO

SAMPLES = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples"


def _image(name: str = "000000165518.jpg") -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(SAMPLES / name).convert("RGB"))


@pytest.fixture(scope="module")
def landmarker():
    pytest.importorskip("ai_edge_litert")
    return bp.BlazePoseLandmarker(flip_test=False, align_passes=1)


def test_roi_affine_maps_crop_centre_and_axes():
    roi = bp.Roi(100.0, 50.0, 64.0, rotation=0.0)
    m = roi.crop_to_image()
    centre = m @ np.array([bp.INPUT_SIZE / 2, bp.INPUT_SIZE / 2, 1.0])
    corner = m @ np.array([0.0, 0.0, 1.0])
    assert np.allclose(centre, [100, 50])
    assert np.allclose(corner, [100 - 32, 50 - 32])
    # rotated by +90 degrees: the crop's "up" (0, -1) must point along +x in the image
    m90 = bp.Roi(0.0, 0.0, 256.0, rotation=np.pi / 2).crop_to_image()
    up = m90[:, :2] @ np.array([0.0, -1.0])
    assert np.allclose(up, [1.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("head", [(0.0, -10.0), (10.0, 0.0), (-7.0, 7.0)])
def test_alignment_roi_points_hip_to_head_upwards(head):
    hip = np.array([50.0, 60.0])
    above = hip + np.array(head)
    roi = bp.roi_from_alignment(hip, above, scale=1.0)
    m = roi.crop_to_image()
    # the head point lands straight above the crop centre, on the top edge (radius = hip-to-head)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    u, v, _ = inv @ np.array([*above, 1.0])
    assert u == pytest.approx(bp.INPUT_SIZE / 2, abs=1e-6)
    assert v == pytest.approx(0.0, abs=1e-6)
    assert roi.size == pytest.approx(2 * np.hypot(*head))


def test_mapping_and_flip_permutation_follow_the_skeleton_definitions():
    assert [BLAZEPOSE.keypoints[i] for i in bp.BLAZEPOSE_TO_COCO] == list(COCO.keypoints)
    perm = bp.FLIP_PERM
    assert len(perm) == bp.NUM_LANDMARKS
    assert np.array_equal(perm[perm], np.arange(bp.NUM_LANDMARKS))  # an involution
    left_sh, right_sh = BLAZEPOSE.index("left_shoulder"), BLAZEPOSE.index("right_shoulder")
    assert perm[left_sh] == right_sh
    assert perm[bp.HIP_CENTER] == bp.HIP_CENTER  # auxiliary points stay


def test_heatmap_refinement_moves_to_confident_peak_only():
    hm = np.full((64, 64, 2), -10.0, np.float32)
    hm[30, 20, 0] = 10.0  # confident peak for landmark 0
    hm[10, 10, 1] = -1.0  # unconfident blob for landmark 1 (sigmoid < 0.5)
    xy = np.array([[21.5 / 64, 31.5 / 64], [10.5 / 64, 10.5 / 64]])
    out = bp.refine_from_heatmap(xy, hm)
    assert out[0] == pytest.approx([20 / 64, 30 / 64], abs=2e-3)
    assert np.allclose(out[1], xy[1])  # below min_confidence: unchanged


def test_instance_scores_rescoring():
    ks = np.array([[0.9, 0.8, 0.1], [0.1, 0.1, 0.1]])
    s = bp.instance_scores(ks, np.array([1.0, 1.0]), threshold=0.2)
    assert s[0] == pytest.approx(0.85)
    assert s[1] == 0.0


def test_missing_litert_names_the_default_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(MissingDependencyError, match=r"pyramidpose\[blazepose\]"):
        bp.BlazePoseLandmarker()


def test_missing_mediapipe_names_the_blazepose_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(MissingDependencyError, match=r"pyramidpose\[blazepose\]"):
        bp.mediapipe_model_path("modules/pose_landmark/pose_landmark_full.tflite")


def test_real_model_finds_a_plausible_upright_pose(landmarker):
    image = _image()
    h, w = image.shape[:2]
    out = landmarker.predict_boxes(image, np.array([[0, 0, w, h]], float))
    kp, scores = bp.to_coco17(out)
    assert kp.shape == (1, 17, 2) and scores.shape == (1, 17)
    assert 0.0 <= out.pose_flag[0] <= 1.0
    assert ((scores >= 0) & (scores <= 1)).all()
    if out.pose_flag[0] > 0.5:  # a person is there: anatomy must be in order
        k = kp[0]
        assert k[COCO.index("nose"), 1] < k[COCO.index("left_hip"), 1]
        assert k[COCO.index("left_shoulder"), 1] < k[COCO.index("left_ankle"), 1]


def test_rotated_person_is_recovered_with_rotation_candidates():
    """Rotating the image 90 degrees must rotate the keypoints with it when the landmarker may try
    rotated first crops (its pose flag picks the upright view; the alignment pass then refines)."""
    pytest.importorskip("ai_edge_litert")
    image = _image()
    h, w = image.shape[:2]
    upright = bp.BlazePoseLandmarker(flip_test=False, align_passes=1)
    base = upright.predict_boxes(image, np.array([[0, 0, w, h]], float))
    rot = np.ascontiguousarray(np.rot90(image, k=-1))  # clockwise: (x, y) -> (h - 1 - y, x)
    rbox = np.array([[0, 0, h, w]], float)
    expect = np.stack([h - 1 - base.landmarks[0, :33, 1], base.landmarks[0, :33, 0]], 1)
    body = np.asarray(bp.BLAZEPOSE_TO_COCO)[5:]  # shoulders .. ankles

    def error(m):
        got = m.predict_boxes(rot, rbox)
        return np.median(np.linalg.norm(got.landmarks[0, :33] - expect, axis=1)[body]), got.pose_flag[0]

    err_rot, flag_rot = error(bp.BlazePoseLandmarker(flip_test=False, align_passes=1, rotations=(0, 90, -90)))
    err_up, _ = error(upright)
    assert err_rot < 0.05 * max(h, w)
    assert err_rot < err_up  # without rotation candidates the sideways person is not recovered
    assert flag_rot > 0.5


def test_flip_test_is_mirror_consistent():
    pytest.importorskip("ai_edge_litert")
    m = bp.BlazePoseLandmarker(flip_test=True, align_passes=0)
    image = _image()
    h, w = image.shape[:2]
    a = m.predict_boxes(image, np.array([[0, 0, w, h]], float))
    b = m.predict_boxes(np.ascontiguousarray(image[:, ::-1]), np.array([[0, 0, w, h]], float))
    # with flip test the prediction on the mirrored image is the mirrored prediction
    mirrored = b.landmarks[0, bp.FLIP_PERM[:33]][:, :]
    mirrored = np.stack([w - mirrored[:, 0], mirrored[:, 1]], 1)
    err = np.linalg.norm(a.landmarks[0, :33] - mirrored, axis=1)
    assert np.median(err) < 0.02 * max(h, w)


def test_gt_box_accuracy_on_coco_mini(coco_mini, landmarker):
    """On the bundled sample's annotated person, the OKS against COCO's ground truth is high."""
    import json

    ann = json.loads((coco_mini / "annotations" / "person_keypoints_val2017.json").read_text())
    rows = [a for a in ann["annotations"] if a["image_id"] == 165518 and a["num_keypoints"] > 5]
    assert rows
    a = max(rows, key=lambda r: r["num_keypoints"])
    out = landmarker.predict_boxes(_image(), np.array([a["bbox"]]))
    kp, _ = bp.to_coco17(out)
    g = np.array(a["keypoints"], float).reshape(17, 3)
    vis = g[:, 2] > 0
    d2 = ((kp[0] - g[:, :2]) ** 2).sum(1)
    oks = np.exp(-d2 / (2 * a["area"] * (2 * COCO.sigmas_array()) ** 2))[vis].mean()
    assert oks > 0.5


def test_absent_model_variant_is_a_clear_error():
    pytest.importorskip("ai_edge_litert")
    from pyramidpose.errors import DataError

    with pytest.raises(DataError, match="unknown BlazePose variant"):
        bp.BlazePoseLandmarker(variant="huge")
    if not (bp.mediapipe_model_path("modules/pose_landmark/pose_landmark_full.tflite").parent / "pose_landmark_heavy.tflite").exists():
        with pytest.raises(DataError, match="ships pose_landmark_full"):
            bp.BlazePoseLandmarker(variant="heavy")


def test_detector_guided_backend_uses_mediapipes_crop_or_demotes_unseen_people():
    pytest.importorskip("ai_edge_litert")
    plain = bp.BlazePoseBackend("fast")
    guided = bp.BlazePoseBackend("fast", detector_guided=True, undetected_factor=0.5)

    image = _image()
    person, _ = bp.BlazePoseDetector().detect(image)  # the motorcyclist (tiles find him)
    found = guided.guided(image, person[0])
    assert len(person) and isinstance(found, bp.Landmarks) and found.xy.shape == (bp.NUM_LANDMARKS, 2)
    blank = np.full((300, 300, 3), 120, np.uint8)
    box = np.array([[50, 50, 150, 200]], float)
    assert guided.guided(blank, box[0]) is None
    a, b = plain.predict(blank, box), guided.predict(blank, box)
    assert np.allclose(a.keypoints, b.keypoints)
    assert b.scores[0] == pytest.approx(0.5 * a.scores[0], rel=1e-5)
