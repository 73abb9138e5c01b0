"""PoseResult conveniences: short repr, keypoint names, to_dict/to_json/to_pandas, draw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyramidpose.inference.results import PoseResult


def _result(n: int = 2) -> PoseResult:
    kp = np.random.default_rng(0).uniform(10, 90, (n, 17, 2)).astype(np.float32)
    ks = np.full((n, 17), 0.9, np.float32)
    boxes = np.tile(np.array([[5, 5, 90, 90]], np.float32), (n, 1))
    return PoseResult(kp, ks, boxes, np.ones(n, np.float32), np.linspace(0.9, 0.5, n).astype(np.float32))


def test_repr_is_short_and_names_are_known() -> None:
    r = _result()
    text = repr(r)
    assert text == "PoseResult(2 people, 17 'coco' keypoints, best score 0.90)" and len(text) < 100
    r.track_ids = np.array([4, 9])
    assert "track_ids=[4, 9]" in repr(r)
    assert r.keypoint_names[0] == "nose" and len(r.keypoint_names) == 17
    assert repr(PoseResult.empty(17)) == "PoseResult(0 people, 17 'coco' keypoints)"


def test_dict_json_round_trip() -> None:
    r = _result()
    r.track_ids = np.array([4, 9])
    d = json.loads(r.to_json())
    assert d == r.to_dict() and d["keypoint_names"][16] == "right_ankle"
    p = d["people"][1]
    assert p["track_id"] == 9 and len(p["keypoints"]) == 17 and p["score"] == pytest.approx(0.5)
    np.testing.assert_allclose(np.array(p["keypoints"]), r.keypoints[1], atol=0.006)
    r.keypoints[0, 0, 0] = np.nan
    assert json.loads(r.to_json())["people"][0]["keypoints"][0][0] is None  # never NaN in JSON


def test_pandas_rows() -> None:
    pytest.importorskip("pandas", reason="optional extra 'pandas' not installed")
    df = _result().to_pandas()
    assert len(df) == 34 and list(df.columns)[:3] == ["person", "track_id", "keypoint"]


def test_draw_accepts_arrays_and_pil() -> None:
    from PIL import Image

    img = np.zeros((100, 100, 3), np.uint8)
    a = _result(1).draw(img)
    b = _result(1).draw(Image.fromarray(img))
    assert a.shape == img.shape and a.any() and np.array_equal(a, b)
