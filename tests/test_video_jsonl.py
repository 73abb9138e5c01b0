"""Video JSON lines start with a header record (keypoint names, skeleton, fps, size, model) that
readers accept: `lift` takes the image size from it and reports no problem for it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pyramidpose.lifting.tracks import read_tracks, read_video_header
from pyramidpose.skeletons import COCO


def _write(path: Path, header: bool) -> None:
    rng = np.random.default_rng(0)
    lines = []
    if header:
        lines.append({"header": {"keypoint_names": list(COCO.keypoints), "skeleton": [list(limb) for limb in COCO.limbs],
                                 "fps": 25.0, "width": 640, "height": 360, "model": "test"}})  # fmt: skip
    for f in range(3):
        kp = rng.uniform(100, 300, (17, 2)).round(2).tolist()
        lines.append({"frame": f, "time": f / 25, "instances": [{"track_id": 1, "keypoints": kp, "keypoint_scores": [0.9] * 17}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_header_is_read_and_skipped(tmp_path: Path) -> None:
    _write(tmp_path / "a.jsonl", header=True)
    _write(tmp_path / "old.jsonl", header=False)
    tracks, problems = read_tracks(tmp_path / "a.jsonl")
    assert problems == [] and len(tracks) == 1 and len(tracks[0].frames) == 3
    h = read_video_header(tmp_path / "a.jsonl")
    assert (h["width"], h["height"], h["fps"]) == (640, 360, 25.0) and h["keypoint_names"][0] == "nose"
    assert read_video_header(tmp_path / "old.jsonl") == {}
