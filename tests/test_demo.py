"""`pyramidpose demo`: the whole pipeline on the bundled samples, offline, with the embedded default."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")


def test_demo_writes_and_lists_everything(tmp_path, capsys):
    from pyramidpose.cli import main

    out = tmp_path / "demo_out"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    expected = [
        "results.json", "000000165518_pose.jpg", "000000229358_pose.jpg", "000000434204_pose.jpg",
        "street_5frames.jsonl", "street_5frames.mp4",
    ]  # fmt: skip
    for name in expected:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert f"wrote {out / name}" in printed
    results = json.loads((out / "results.json").read_text())
    assert {r["image_id"] for r in results} >= {165518}
    lines = (out / "street_5frames.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 5 and json.loads(lines[0])["header"]["fps"] > 0  # a header, then 5 frames
    assert "embedded default" in printed and "skipped" not in printed


def test_demo_help_and_import_stay_light(capsys):
    import subprocess
    import sys

    from pyramidpose.commands import demo

    with pytest.raises(SystemExit) as exc:
        demo.main(["--help"])
    assert exc.value.code == 0
    assert "--out" in capsys.readouterr().out
    code = "import sys, pyramidpose.commands.demo; print('torch' in sys.modules, 'cv2' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]
