"""A pose model exported by ``pyramidpose export`` run through onnxruntime.

:class:`ONNXPoseModel` behaves like :class:`~pyramidpose.models.pose_model.PoseModel` for
:class:`~pyramidpose.inference.topdown.TopDownPredictor`: ``forward(x [B, 3, H, W]) -> heatmaps`` and a
``config`` (:class:`ModelConfig`) read from the file's metadata, so ``load_model("x.onnx")``,
``predict --weights x.onnx`` and ``pyramidpose.Pose("x.onnx")`` run it with no other change.
Execution providers: CUDA (when the device asks for it) and OpenVINO when installed, CPU otherwise;
none is assumed faster (``benchmarks/bench_inference.py --onnx`` measures them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pyramidpose.errors import CheckpointError, MissingDependencyError
from pyramidpose.models.pose_model import ModelConfig

# keys of the ONNX metadata_props written by pyramidpose.export
META_CONFIG = "pyramidpose.config"
META_KIND = "pyramidpose.kind"
META_PREFIX = "pyramidpose."


def onnx_providers(device: str | torch.device | None = None) -> list[str]:
    """Installed onnxruntime execution providers to use, best first: CUDA (unless ``device`` is the
    CPU), OpenVINO, then CPU."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = ["OpenVINOExecutionProvider", "CPUExecutionProvider"]
    if device is None or torch.device(device).type == "cuda":
        wanted.insert(0, "CUDAExecutionProvider")
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def require_onnxruntime(what: str = "An .onnx pose model") -> None:
    """A one-line error naming the ``onnx`` extra when onnx/onnxruntime are not installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", what) from None


def _quiet_options():
    """The project's onnxruntime session options (errors-only logging, no spinning threads), with
    torch's thread count."""
    from pyramidpose.inference.backends.onnx_models import session_options

    return session_options(torch.get_num_threads())


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``pyramidpose.*`` metadata of an ONNX file (without reading the weights into torch)."""
    require_onnxruntime()
    import onnx

    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds; one line for the user
        raise CheckpointError(f"{p} is an ONNX model that cannot be read ({type(exc).__name__}: {exc})") from None
    return {m.key: m.value for m in model.metadata_props if m.key.startswith(META_PREFIX)}


class ONNXPoseModel(nn.Module):
    """An exported heatmap model: ``forward(x [B, 3, H, W] float) -> [B, K, H/4, W/4]`` float32.

    Holds no parameters; ``config`` comes from the ONNX metadata. A model exported without
    ``--dynamic-batch`` is run in chunks of its fixed batch size (the last chunk padded).
    """

    def __init__(self, path: str | os.PathLike[str], device: str | torch.device | None = None) -> None:
        super().__init__()
        require_onnxruntime()
        import onnxruntime as ort

        self.path = Path(path)
        meta = read_onnx_metadata(self.path)
        if meta.get(META_KIND) != "pose" or META_CONFIG not in meta:
            raise CheckpointError(
                f"{self.path} is an ONNX model without pyramidpose pose metadata ({META_KIND}=pose); "
                "export one with 'pyramidpose export --weights W --format onnx'"
            )
        try:
            self.config = ModelConfig.from_dict(json.loads(meta[META_CONFIG]))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{self.path}: the stored model config is invalid: {exc}") from None
        self.metadata = meta
        # TopDownPredictor runs no autocast for it: the file holds its own precision
        self.exported_precision = meta.get(META_PREFIX + "precision", "fp32")
        self.providers = onnx_providers(device)
        try:
            self.session = ort.InferenceSession(str(self.path), _quiet_options(), providers=self.providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise CheckpointError(f"{self.path}: onnxruntime cannot load it ({exc})") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float32).numpy().astype(self.input_dtype, copy=False)
        n = len(arr)
        if self.fixed_batch is None:
            out = self.session.run(None, {self.input_name: arr})[0]
        else:
            b = self.fixed_batch
            parts = []
            for i in range(0, n, b):
                chunk = arr[i : i + b]
                if len(chunk) < b:
                    chunk = np.concatenate([chunk, np.zeros((b - len(chunk), *chunk.shape[1:]), chunk.dtype)])
                parts.append(self.session.run(None, {self.input_name: chunk})[0])
            out = np.concatenate(parts)[:n]
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device)

    def extra_repr(self) -> str:
        return f"path={str(getattr(self, 'path', '?'))!r}, providers={getattr(self, 'providers', [])}"
