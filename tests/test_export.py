"""Issue 14, must show 2: ``pyramidpose export`` then ``predict --weights model.onnx`` gives the
COCO results of the PyTorch checkpoint (AP equal to 3 decimals) for a classic, a simple and an FPN
model, with heatmap parity <= 1e-4 on real crops; the config travels in the ONNX metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from pyramidpose import cli  # noqa: E402

DATA = Path(__file__).parent / "data" / "coco"
ANN = DATA / "person_keypoints_mini.json"
KINDS = {
    # classic: fixed batch 4 (the runner pads the last chunk); simple and FPN: free batch axis
    "classic": ({}, ["--batch-size", "4"]),
    "simple": ({"head": "simple"}, ["--dynamic-batch"]),
    "fpn": ({"neck": {"type": "fpn", "channels": 16, "head_channels": 16}}, ["--dynamic-batch"]),
}


def _tiny(kind: str, seed: int = 0):
    import torch

    import pyramidpose

    torch.manual_seed(seed)
    model = pyramidpose.create_model("vitpose-tiny", input_size=(64, 48), **KINDS[kind][0])
    with torch.no_grad():  # heatmap maxima above the rescoring threshold: instance scores are not all 0
        [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1].bias.add_(0.3)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import pyramidpose

    tmp = tmp_path_factory.mktemp("export")
    out = {}
    for kind, (_, flags) in KINDS.items():
        weights = pyramidpose.save_model(_tiny(kind), tmp / f"{kind}.safetensors")
        onnx = tmp / f"{kind}.onnx"
        assert cli.main(["export", "--weights", str(weights), "--format", "onnx", "--out", str(onnx), *flags]) == 0
        out[kind] = (weights, onnx)
    out["tmp"] = tmp
    return out


def _predict(weights: Path, out: Path) -> list[dict]:
    argv = ["predict", "--weights", str(weights), "--input", str(DATA / "images"), "--boxes", str(ANN),
            "--mmpose-gt-boxes", "--out", str(out), "--no-progress", "--precision", "fp32"]  # fmt: skip
    assert cli.main(argv) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("kind", list(KINDS))
def test_onnx_predict_equals_checkpoint(exported: dict, kind: str) -> None:
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval

    weights, onnx = exported[kind]
    ref = _predict(weights, exported["tmp"] / f"{kind}_pt.json")
    got = _predict(onnx, exported["tmp"] / f"{kind}_onnx.json")
    assert len(got) == len(ref) == 8  # the persons with keypoints (MMPose GT-box protocol)
    key = lambda r: (r["image_id"], r["keypoints"][:2])  # noqa: E731
    for a, b in zip(sorted(got, key=key), sorted(ref, key=key)):
        assert a["image_id"] == b["image_id"]
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-2)
        assert abs(a["score"] - b["score"]) <= 1e-4
    ap_ref, ap_got = coco_keypoint_eval(ANN, ref)["AP"], coco_keypoint_eval(ANN, got)["AP"]
    # untrained models score ~0 on the real labels; the checkpoint's own poses as labels give a
    # reference AP of 1 that any keypoint drift of the ONNX run would lower
    pseudo = _as_ground_truth(ref)
    self_ref, self_got = coco_keypoint_eval(pseudo, ref)["AP"], coco_keypoint_eval(pseudo, got)["AP"]
    print(f"{kind}: AP checkpoint {ap_ref:.4f} onnx {ap_got:.4f}; on its own poses {self_ref:.4f} vs {self_got:.4f}")
    assert round(ap_got, 3) == round(ap_ref, 3)
    assert round(self_ref, 3) == 1.0 and round(self_got, 3) == round(self_ref, 3)


def _as_ground_truth(results: list[dict]) -> dict:
    """A COCO annotation dict whose labels are ``results`` (all keypoints visible)."""
    gt = json.loads(ANN.read_text())
    anns = []
    for i, r in enumerate(results):
        k = np.asarray(r["keypoints"], float).reshape(-1, 3)
        x0, y0 = k[:, :2].min(0)
        w, h = np.ptp(k[:, 0]) + 1, np.ptp(k[:, 1]) + 1
        k[:, 2] = 2
        anns.append({"id": i + 1, "image_id": r["image_id"], "category_id": 1, "iscrowd": 0, "num_keypoints": len(k),
                     "keypoints": k.ravel().tolist(), "bbox": [x0, y0, w, h], "area": float(w * h)})  # fmt: skip
    return {**gt, "annotations": anns}


@pytest.mark.parametrize("kind", list(KINDS))
def test_heatmap_parity_on_real_crops(exported: dict, kind: str) -> None:
    from pyramidpose import load_model
    from pyramidpose.data.images import read_image
    from pyramidpose.data.transforms import normalize_crops
    from pyramidpose.inference.topdown import TopDownPredictor

    weights, onnx = exported[kind]
    gt = json.loads(ANN.read_text())
    im = gt["images"][0]
    boxes = [a["bbox"] for a in gt["annotations"] if a["image_id"] == im["id"]]
    pt, ox = TopDownPredictor(load_model(weights), precision="fp32"), TopDownPredictor(load_model(onnx))
    assert type(ox.model).__name__ == "ONNXPoseModel" and ox.keypoint_set.name == "coco"
    crops = pt._prepare(read_image(DATA / "images" / im["file_name"]), boxes, None, None).crops
    batch = normalize_crops(crops)
    a, b = pt.heatmaps(batch), ox.heatmaps(batch)  # flip test included
    assert a.shape == b.shape and a.shape[0] == len(boxes) > 1
    assert float(np.abs(a - b).max()) <= 1e-4


def test_metadata_carries_the_config_and_pose_runs_it(exported: dict) -> None:
    import pyramidpose
    from pyramidpose.data.images import read_image
    from pyramidpose.models.onnx_model import read_onnx_metadata

    weights, onnx = exported["fpn"]
    meta = read_onnx_metadata(onnx)
    cfg = json.loads(meta["pyramidpose.config"])
    assert meta["pyramidpose.kind"] == "pose" and cfg["neck"]["type"] == "fpn"
    assert json.loads(meta["pyramidpose.input_size"]) == [64, 48] and meta["pyramidpose.codec"] == "udp"
    assert meta["pyramidpose.keypoint_set"] == "coco"
    boxes = np.array([[10.0, 20.0, 120.0, 200.0], [200.0, 30.0, 100.0, 180.0]])
    det = lambda img: (boxes, np.array([0.9, 0.8]))  # noqa: E731
    pose = pyramidpose.Pose(onnx, detector=det, device="cpu")  # precision auto: the file's own (fp32)
    image = read_image(DATA / "images" / "000000434204.jpg")
    result = pose(image)
    ref = pyramidpose.Pose(weights, detector=det, device="cpu", vitpose_options={"precision": "fp32"})(image)
    assert len(result) == 2
    np.testing.assert_allclose(result.keypoints, ref.keypoints, atol=1e-2)


def test_parity_failure_writes_nothing(tmp_path: Path) -> None:
    from pyramidpose.errors import CheckpointError
    from pyramidpose.export import export_onnx

    out = tmp_path / "m.onnx"
    with pytest.raises(CheckpointError, match="refused: max abs heatmap difference"):
        export_onnx(_tiny("simple"), out, tolerance=-1.0)  # no difference can pass: must refuse
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_bad_output_is_refused_before_loading(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    assert cli.main(["export", "--weights", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "file" / "m.onnx")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["export", "--weights", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "m.bin")]) == 2
    assert "ending in .onnx" in capsys.readouterr().err


def test_missing_onnxruntime_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyramidpose.errors import MissingDependencyError
    from pyramidpose.models.onnx_model import ONNXPoseModel

    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if the extra were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'pyramidpose\[onnx\]'"):
        ONNXPoseModel(tmp_path / "m.onnx")


@pytest.mark.parametrize("asset", ["lifter_default", "forecaster_default", "forecaster_default_2d"])
def test_lifter_and_forecaster_export_match_pytorch(tmp_path: Path, asset: str) -> None:
    """The embedded lifter and forecasters (old-layout files) export through the command; onnxruntime
    equals PyTorch on new inputs of two batch sizes and the file carries the kind and config."""
    import onnx
    import onnxruntime as ort
    import torch

    from pyramidpose.export import sequence_input_shape
    from pyramidpose.models.onnx_model import META_CONFIG, META_KIND

    weights = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / f"{asset}.safetensors"
    out = tmp_path / f"{asset}.onnx"
    assert cli.main(["export", "--weights", str(weights), "--out", str(out), "--dynamic-batch"]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    kind = "lifter" if asset.startswith("lifter") else "forecaster"
    assert meta[META_KIND] == kind and json.loads(meta[META_CONFIG])["model"]
    if kind == "lifter":
        from pyramidpose.lifting.experiment import load_lifter as load
    else:
        from pyramidpose.forecasting.train import load_forecaster as load
    model, config = load(weights)
    shape = sequence_input_shape(kind, config)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(1)
    for batch in (1, 5):
        x = torch.randn(batch, *shape, generator=gen)
        with torch.no_grad():
            ref = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1e-4
