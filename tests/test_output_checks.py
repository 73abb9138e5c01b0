"""Output locations are checked before any work: `--out` under a regular file is one line on
stderr, exit status 2, no traceback, and the work function is never called."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyramidpose import cli
from pyramidpose.commands import demo, evaluate, forecast, lift
from pyramidpose.utils.outputs import check_output_dir, check_output_file, output_stems

SAMPLES = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples"


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    f = tmp_path / "plain.txt"
    f.write_text("a regular file")
    return f


def _no_work(monkeypatch) -> list[str]:
    """Make every command's work fail loudly if it is reached."""
    calls: list[str] = []

    def boom(name):
        def f(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} ran before the output check")

        return f

    import pyramidpose.evaluation.coco_eval as coco_eval
    import pyramidpose.inference.pipeline as pipeline

    monkeypatch.setattr(pipeline, "Pipeline", boom("Pipeline"))
    monkeypatch.setattr(coco_eval, "coco_keypoint_eval", boom("coco_keypoint_eval"))
    for mod, name in ((lift, "_predict"), (lift, "_eval"), (lift, "_train"), (forecast, "_forecast"),
                      (forecast, "_eval"), (forecast, "_train")):  # fmt: skip
        monkeypatch.setattr(mod, name, boom(f"{mod.__name__}.{name}"))
    return calls


def test_out_under_a_file_fails_first_in_one_line(blocker: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    calls = _no_work(monkeypatch)
    under = blocker / "sub"
    img = str(SAMPLES / "000000165518.jpg")
    commands = [
        ["predict", img, "--out", str(under)],
        ["predict", img, "--out", str(under / "results.json")],
        ["predict", img, "--out", str(tmp_path / "ok"), "--draw", str(under)],
        ["eval", "--gt", "g.json", "--pred", "p.json", "--out", str(under / "stats.json")],
        ["lift", "pred.jsonl", "--out", str(under)],
        ["lift", "eval", "--out", str(under / "m.json")],
        ["lift", "train", "c.yaml", "--work-dir", str(under)],
        ["demo", "--out", str(under)],
        ["forecast", "seq.npy", "--out", str(under)],
        ["forecast", "eval", "--out", str(under / "m.json")],
        ["forecast", "train", "c.yaml", "--work-dir", str(under)],
        ["train", "c.yaml", "--work-dir", str(under)],
    ]
    for argv in commands:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is a file, not a folder" in err[0] and "Traceback" not in err[0], (argv, err)
    assert calls == [] and demo is not None and evaluate is not None


def test_checks_accept_good_locations_and_refuse_folders(tmp_path: Path) -> None:
    from pyramidpose.errors import ConfigError

    assert check_output_file(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        check_output_file(tmp_path / "d")


def test_output_stems_keep_folders_for_same_names(tmp_path: Path) -> None:
    a, b, c = tmp_path / "x" / "a" / "clip.mp4", tmp_path / "x" / "b" / "clip.mp4", tmp_path / "x" / "c" / "other.mp4"
    stems, notes = output_stems([a, b, c, "rtsp://cam/live"])
    assert stems[a] == "a/clip" and stems[b] == "b/clip" and stems[c] == "other" and stems["rtsp://cam/live"] == "live"
    assert len(notes) == 2 and "same name" in notes[0]


def test_unavailable_device_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    calls = _no_work(monkeypatch)
    code = cli.main(["predict", str(SAMPLES / "000000165518.jpg"), "--device", "cuda", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "CUDA is not available" in err[0] and calls == []
