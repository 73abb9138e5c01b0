"""The embedded ONNX models (``pyramidpose/assets/models``) and onnxruntime sessions for them."""

from __future__ import annotations

import os
from pathlib import Path

from pyramidpose.errors import ConfigError

MODELS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"


def embedded_model_path(name: str) -> Path:
    """Path of an embedded model by name (``movenet-thunder``, ``nanodet``...), checked to exist."""
    path = MODELS_DIR / f"{name}.onnx"
    if not path.is_file():
        known = sorted(p.stem for p in MODELS_DIR.glob("*.onnx"))
        raise ConfigError(f"embedded model '{name}' not found in {MODELS_DIR}; available: {known}")
    return path


def onnx_session(path: str | os.PathLike[str], num_threads: int = 2):
    """An onnxruntime CPU session with ``num_threads`` intra-op threads (one inter-op thread)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(num_threads), providers=["CPUExecutionProvider"])


def session_options(num_threads: int = 2):
    """onnxruntime session options of every pyramidpose session: ``num_threads`` intra-op threads,
    one inter-op thread, errors-only logging, no spinning worker threads."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "onnxruntime is not installed: pip install onnxruntime (a base dependency of pyramidpose)"
        ) from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(num_threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # no busy-waiting worker threads: on a shared or oversubscribed CPU spinning made a Thunder
    # crop 2-3x slower (159 vs 51 ms measured here under load); on a quiet machine it costs little
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts
