"""File sniffing: a checkpoint loader names what a wrong file is before any torch.load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pyramidpose.errors import CheckpointError
from pyramidpose.utils.sniff import file_kind

SAMPLES = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples"


def test_kinds_from_first_bytes(tmp_path: Path) -> None:
    from PIL import Image
    from safetensors.torch import save_file

    jpg = tmp_path / "photo.pth"  # the name lies; the bytes do not
    shutil.copy(SAMPLES / "000000165518.jpg", jpg)
    png = tmp_path / "a.bin"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, format="PNG")
    zipped = tmp_path / "m.pt"
    torch.save({"w": torch.zeros(2)}, zipped)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    st = tmp_path / "x.dat"
    save_file({"w": torch.zeros(2)}, str(st))
    html = tmp_path / "w.pth"
    html.write_text("\n<!DOCTYPE html><html><body>Sign in</body></html>")
    js = tmp_path / "j.pth"
    js.write_text(json.dumps({"a": 1}))
    empty = tmp_path / "e.pth"
    empty.write_bytes(b"")
    kinds = {p.name: file_kind(p) for p in (jpg, png, zipped, legacy, st, html, js, empty)}
    assert kinds == {
        "photo.pth": "jpeg", "a.bin": "png", "m.pt": "torch-zip", "legacy.pt": "pickle", "x.dat": "safetensors",
        "w.pth": "html", "j.pth": "json", "e.pth": "empty",
    }  # fmt: skip
    assert file_kind(SAMPLES / "street_5frames.mp4") == "mp4"


def test_load_model_names_the_wrong_file(tmp_path: Path, monkeypatch) -> None:
    import pyramidpose

    photo = tmp_path / "photo.jpg"
    shutil.copy(SAMPLES / "000000165518.jpg", photo)
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    with pytest.raises(CheckpointError, match=r"^photo.jpg is a JPEG image, not a checkpoint"):
        pyramidpose.load_model(photo)
    page = tmp_path / "vitpose-b.pth"
    page.write_text("<html><head><title>OneDrive</title></head></html>")
    with pytest.raises(CheckpointError, match="vitpose-b.pth is an HTML page, not a checkpoint"):
        pyramidpose.load_model(page)
    assert calls == []  # refused before torch.load


def test_cli_weights_photo_is_one_line(tmp_path: Path, capsys) -> None:
    from pyramidpose.cli import main

    photo = tmp_path / "photo.jpg"
    shutil.copy(SAMPLES / "000000165518.jpg", photo)
    code = main(["predict", str(SAMPLES / "000000165518.jpg"), "--weights", str(photo), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "photo.jpg is a JPEG image, not a checkpoint" in err[0]
    assert "weights_only" not in err[0] and not (tmp_path / "o").exists()
