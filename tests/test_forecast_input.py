"""Hostile input to ``pyramidpose forecast``: a .npy header that lies about its shape is refused
before anything is allocated, and --fps is validated (issue 18, cases 3 and 5)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from pyramidpose import cli
from tests.test_forecast_cli import _tiny_checkpoint


def _lying_npy(path, shape) -> None:
    """A valid .npy header declaring ``shape`` float32, followed by 1 KB of data."""
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 1024)


@pytest.mark.parametrize("shape", [(900_000_000, 17, 3), (250_000, 17, 3)])
def test_lying_npy_header_is_refused_before_allocating(tmp_path, capsys, shape):
    ckpt = _tiny_checkpoint(tmp_path / "f3d.safetensors")
    _lying_npy(tmp_path / "lie.npy", shape)
    tracemalloc.start()
    try:
        code = cli.main(["forecast", str(tmp_path / "lie.npy"), "--weights", str(ckpt), "--out", str(tmp_path / "o")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2
    err = capsys.readouterr().err
    assert "lie.npy" in err and "declares" in err and "Traceback" not in err
    assert peak < 20_000_000  # the 51 MB (or 171 GiB) the header declares was never allocated


@pytest.mark.parametrize("fps", ["0", "-25", "nan", "inf", "1e-3"])
def test_fps_validated(tmp_path, capsys, fps):
    ckpt = _tiny_checkpoint(tmp_path / "f3d.safetensors", fps=25.0)
    np.save(tmp_path / "seq.npy", np.random.default_rng(0).normal(size=(12, 17, 3)).astype(np.float32))
    argv = ["forecast", str(tmp_path / "seq.npy"), "--weights", str(ckpt), "--out", str(tmp_path / "o"), "--fps", fps]
    try:
        code = cli.main(argv)
    except SystemExit as e:  # refused by argparse's type check
        code = e.code
    assert code == 2
    assert "--fps" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
