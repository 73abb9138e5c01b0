"""Resumable training checkpoints and exported model files.

``WORK_DIR/checkpoints/last.pt`` holds everything needed to continue a run exactly: model,
optimiser, schedule, GradScaler, EMA, epoch, step, the position inside the epoch, the metrics rows so
far and the random states (python, numpy, torch CPU and CUDA). It is written atomically (temporary
file + rename), so a run killed at any moment leaves the previous complete checkpoint. It is read
with ``torch.load(weights_only=True)``: only tensors and plain Python containers are stored.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyramidpose.errors import CheckpointError
from pyramidpose.models.checkpoints import save_model
from pyramidpose.utils.io import atomic_path

LAST = "last.pt"


def capture_rng_state() -> dict[str, Any]:
    """The global random states (python, numpy, torch CPU, CUDA when present) as plain data."""
    py = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - the global state is what we restore
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a training state dict atomically with ``torch.save``."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_training_state` (``weights_only=True``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / LAST if (path / "checkpoints" / LAST).is_file() else path / LAST
    if not path.is_file():
        raise CheckpointError(
            f"no resumable checkpoint at {path}: --resume expects a work directory containing "
            f"checkpoints/{LAST} (written by 'pyramidpose train')"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CheckpointError(f"cannot read training checkpoint {path}: {exc}") from None
    required = ("model", "optimizer", "schedule", "epoch", "step", "rng", "config")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a pyramidpose training checkpoint (missing {', '.join(missing)})")
    return state


def export_model(model: torch.nn.Module, path: str | Path) -> Path:
    """Save ``model`` in the format ``pyramidpose.load_model`` reads, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_model(model, tmp)
    return path
