"""Where the project's data lives: one root for every command.

The data root is ``$PYRAMIDPOSE_DATA`` when set, else ``../shared/data`` relative to the working
directory when that exists, else ``../shared/data`` beside the repository (the layout of a checkout
with the shared data next to it). Datasets are sub-directories: ``coco-mini``, ``cmu-mocap``...
Pure Python (no torch import).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

#: Environment variable naming the data root.
DATA_ENV = "PYRAMIDPOSE_DATA"
#: The default data root, relative to the working directory or to the repository's parent.
DEFAULT_RELATIVE = Path("..") / "shared" / "data"
#: Old variable for the CMU mocap directory only (read with a FutureWarning).
OLD_CMU_ENV = "PYRAMIDPOSE_CMU_ROOT"

_REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """The data root (see the module docstring); it need not exist."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    here = Path.cwd() / DEFAULT_RELATIVE
    if here.is_dir():
        return here
    return _REPO / DEFAULT_RELATIVE


def data_path(*parts: str) -> Path:
    """A path under the data root, e.g. ``data_path("coco-mini", "val2017")``."""
    return data_root().joinpath(*parts)


def cmu_mocap_root() -> Path:
    """The CMU mocap directory: ``<data root>/cmu-mocap`` (or the old ``$PYRAMIDPOSE_CMU_ROOT``)."""
    old = os.environ.get(OLD_CMU_ENV)
    if old and not os.environ.get(DATA_ENV):
        warnings.warn(
            f"{OLD_CMU_ENV} is deprecated: set {DATA_ENV} to the directory holding cmu-mocap instead",
            FutureWarning,
            stacklevel=2,
        )
        return Path(old).expanduser()
    return data_path("cmu-mocap")
