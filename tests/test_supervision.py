"""The optional supervision converter: field mapping (checked against a stand-in module that
records what it is given) and, when supervision is installed, the real KeyPoints."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from pyramidpose.errors import MissingDependencyError
from pyramidpose.inference.results import PoseResult
from pyramidpose.viz.supervision import to_supervision


def _result() -> PoseResult:
    kp = np.arange(2 * 17 * 2, dtype=np.float32).reshape(2, 17, 2)
    ks = np.linspace(0, 1, 34, dtype=np.float32).reshape(2, 17)
    r = PoseResult(kp, ks, np.array([[10, 20, 30, 40], [0, 0, 5, 5]], np.float32), np.ones(2, np.float32),
                   np.array([0.9, 0.4], np.float32))  # fmt: skip
    r.track_ids = np.array([7, 3])
    return r


def test_mapping_with_a_stand_in_module(monkeypatch) -> None:
    fake = types.ModuleType("supervision")
    fake.KeyPoints = lambda **kw: kw  # records the fields
    monkeypatch.setitem(sys.modules, "supervision", fake)
    kw = to_supervision(_result())
    r = _result()
    np.testing.assert_array_equal(kw["xy"], r.keypoints)
    np.testing.assert_array_equal(kw["confidence"], r.keypoint_scores)
    assert kw["class_id"].tolist() == [0, 0] and kw["data"]["track_id"].tolist() == [7, 3]
    np.testing.assert_allclose(kw["data"]["bbox"][0], [10, 20, 40, 60])
    np.testing.assert_allclose(kw["data"]["score"], [0.9, 0.4])


def test_missing_supervision_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)  # import fails
    with pytest.raises(MissingDependencyError, match=r"pyramidpose\[supervision\]"):
        to_supervision(_result())


def test_real_supervision_keypoints() -> None:
    sv = pytest.importorskip("supervision", reason="optional extra 'supervision' not installed")
    kp = to_supervision(_result())
    assert isinstance(kp, sv.KeyPoints) and len(kp) == 2 and kp.xy.shape == (2, 17, 2)
