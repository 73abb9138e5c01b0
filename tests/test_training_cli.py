"""``pyramidpose train`` with careless input (issue 18, cases 2 and 5): an existing run is never
overwritten silently, and bad numbers are refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyramidpose import cli
from tests._training_utils import tiny_overrides

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "coco_mini_tiny.yaml")


def _train(argv: list[str]) -> int:
    try:
        return cli.main(["train", *argv])
    except SystemExit as e:  # refused by argparse
        return int(e.code or 0)


def _previous_run(work: Path) -> dict[Path, bytes]:
    files = {work / "checkpoints" / "last.pt": b"old state", work / "metrics.csv": b"epoch,loss\n1,0.5\n",
             work / "model_last.safetensors": b"old weights", work / "model_best.safetensors": b"old best"}  # fmt: skip
    for p, data in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_existing_run_is_refused_without_resume_or_overwrite(tmp_path, coco_mini, capsys):
    work = tmp_path / "run"
    files = _previous_run(work)
    argv = [CONFIG, "--work-dir", str(work), "--max-steps", "1", *sum((["--set", s] for s in tiny_overrides(coco_mini)), [])]
    assert _train(argv) == 2
    err = capsys.readouterr().err
    assert str(work) in err and "--resume" in err and "--overwrite" in err
    assert all(p.read_bytes() == data for p, data in files.items())  # untouched


def test_overwrite_replaces_the_previous_run(tmp_path, coco_mini, one_thread):
    work = tmp_path / "run"
    files = _previous_run(work)
    argv = [CONFIG, "--work-dir", str(work), "--max-steps", "1", "--overwrite",
            *sum((["--set", s] for s in tiny_overrides(coco_mini)), [])]  # fmt: skip
    assert _train(argv) == 0
    assert not (work / "model_best.safetensors").exists() or (work / "model_best.safetensors").read_bytes() != files[
        work / "model_best.safetensors"]  # fmt: skip
    assert (work / "metrics.csv").read_bytes() != files[work / "metrics.csv"]


@pytest.mark.parametrize("bad,field", [
    ("optim.lr=-1", "optim.lr"), ("optim.lr=.nan", "optim.lr"),
    ("optim.lr=.inf", "optim.lr"), ("optim.betas=[1.5,0.9]", "optim.betas"), ("optim.betas=[0.9,-0.1]", "optim.betas"),
    ("optim.weight_decay=-0.1", "optim.weight_decay"), ("data.num_workers=-1", "data.num_workers"),
    ("model.sigma=0", "model.sigma"), ("train.device=bogus", "device"), ("train.device=cuda:7", "device"),
])  # fmt: skip
def test_bad_numbers_are_refused_before_the_run_directory_exists(tmp_path, coco_mini, capsys, bad, field):
    work = tmp_path / "run"
    argv = [CONFIG, "--work-dir", str(work), "--max-steps", "1",
            *sum((["--set", s] for s in [*tiny_overrides(coco_mini), bad]), [])]  # fmt: skip
    assert _train(argv) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err, err
    assert not work.exists()
