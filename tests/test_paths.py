"""The one data-root helper (pyramidpose.paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyramidpose import paths


def test_env_var_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYRAMIDPOSE_DATA", str(tmp_path))
    monkeypatch.setenv("PYRAMIDPOSE_CMU_ROOT", "/elsewhere")  # the old variable is ignored then
    assert paths.data_root() == tmp_path
    assert paths.cmu_mocap_root() == tmp_path / "cmu-mocap"
    assert paths.data_path("coco-mini", "val2017") == tmp_path / "coco-mini" / "val2017"


def test_default_is_shared_data_beside_the_cwd_then_beside_the_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYRAMIDPOSE_DATA", raising=False)
    monkeypatch.delenv("PYRAMIDPOSE_CMU_ROOT", raising=False)
    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    repo_default = Path(paths.__file__).resolve().parents[1] / ".." / "shared" / "data"
    assert paths.data_root() == repo_default  # no ../shared/data beside the cwd
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert paths.data_root().resolve() == (tmp_path / "shared" / "data").resolve()


def test_old_cmu_variable_still_read_with_a_future_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYRAMIDPOSE_DATA", raising=False)
    monkeypatch.setenv("PYRAMIDPOSE_CMU_ROOT", str(tmp_path))
    with pytest.warns(FutureWarning, match="PYRAMIDPOSE_DATA"):
        assert paths.cmu_mocap_root() == tmp_path


def test_lifting_and_forecasting_defaults_use_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pyramidpose.forecasting.data import ForecastDataConfig
    from pyramidpose.lifting.experiment import LiftDataConfig, default_cmu_root

    monkeypatch.setenv("PYRAMIDPOSE_DATA", str(tmp_path))
    assert default_cmu_root() == str(tmp_path / "cmu-mocap")
    assert ForecastDataConfig().root == "" and LiftDataConfig().root == ""  # empty: resolved through paths
