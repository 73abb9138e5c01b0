"""The one-call API: the README's Python section runs as written; Pose accepts paths, PIL images,
arrays, lists, videos and stream sources; errors are one line."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the embedded default model runs on onnxruntime (a base dependency)")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "pyramidpose" / "assets" / "samples"
PHOTO = SAMPLES / "000000165518.jpg"
CLIP = SAMPLES / "street_5frames.mp4"


def readme_python_blocks(section: str = "Python") -> list[str]:
    """The ```python blocks of the README section ``## <section>``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^## {section}\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, f"README has no '## {section}' section"
    return re.findall(r"```python\n(.*?)```", m.group(1), re.S)


@pytest.fixture(scope="module")
def pose():
    import pyramidpose

    return pyramidpose.Pose()


def test_readme_python_section_runs(tmp_path: Path, monkeypatch) -> None:
    blocks = readme_python_blocks()
    assert blocks and "Pose()" in blocks[0] and 'pose("photo.jpg")' in blocks[0] and "pose.stream(" in blocks[0]
    shutil.copy(PHOTO, tmp_path / "photo.jpg")
    shutil.copy(CLIP, tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    scope: dict = {}
    with contextlib.redirect_stdout(out):
        for code in blocks:
            exec(compile(code, "README.md", "exec"), scope)
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"PoseResult\([1-9]\d* people, 17 'coco' keypoints, best score 0\.\d\d\)", lines[0]), lines[0]
    assert len(lines) == 1 + 5  # the result, then one line per frame of the 5-frame clip
    assert lines[1].startswith("0 0.0 [") and scope["xy"].shape[1:] == (17, 2) and len(scope["xy"]) >= 1


def test_inputs_of_every_kind_agree(pose) -> None:
    from PIL import Image

    from pyramidpose.data.images import read_image

    rgb = read_image(PHOTO)
    by_path = pose(str(PHOTO))
    by_pathlib = pose(PHOTO)
    by_array = pose(rgb)
    by_pil = pose(Image.open(PHOTO))
    for r in (by_pathlib, by_array, by_pil):
        np.testing.assert_allclose(r.keypoints, by_path.keypoints, atol=1e-3)
    both = pose([PHOTO, rgb])
    assert isinstance(both, list) and len(both) == 2
    gray = pose(rgb.mean(axis=2).astype(np.uint8))  # 2D arrays are grey images
    assert gray.keypoints.shape[1:] == (17, 2)
    frames = pose(CLIP)  # a video path: one result per frame
    assert len(frames) == 5 and all(f.track_ids is not None for f in frames if len(f))
    assert pose.keypoint_names[0] == "nose" and "Pose(model=" in repr(pose)


def test_stream_yields_frames_with_tracks(pose) -> None:
    frames = list(pose.stream(CLIP.resolve().as_uri(), max_frames=3))  # a file:// URL goes through PyAV
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[0].image.shape[2] == 3 and frames[2].time > frames[0].time
    ids0 = set(frames[0].result.track_ids.tolist())
    assert ids0 and ids0 & set(frames[2].result.track_ids.tolist())  # the same people keep their ids


def test_bad_inputs_are_one_line_errors(pose, tmp_path: Path) -> None:
    import pyramidpose
    from pyramidpose.errors import ConfigError, DataError

    with pytest.raises(DataError, match="expected a path, PIL image or numpy array"):
        pose(3.5)
    with pytest.raises(DataError, match=r"shape"):
        pose(np.zeros((4, 4, 7), np.uint8))
    with pytest.raises(DataError):
        pose(tmp_path / "missing.jpg")
    from pyramidpose.errors import CheckpointError

    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(bytes([0x08, 0x07, 0x12, 0x07]) + b"pytorch" + bytes(64))
    with pytest.raises(CheckpointError, match="model.onnx is an ONNX model"):
        pyramidpose.Pose(onnx)  # a broken ONNX file: refused in one line, not a traceback
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            pyramidpose.Pose(device="cuda")
