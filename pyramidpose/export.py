"""Export a pose model to ONNX, with its config in the metadata and parity checked before writing.

:func:`export_onnx` traces the model (the TorchScript exporter: no onnxscript needed), stores the
:class:`ModelConfig` (input size, codec, keypoint set, head/neck) as ``metadata_props``, runs the
file through onnxruntime on a random batch and compares with PyTorch: a max abs difference on the
heatmaps above the tolerance (1e-4 in fp32) refuses the export and writes nothing. The file is
written atomically. :class:`~pyramidpose.models.onnx_model.ONNXPoseModel` runs it.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyramidpose.errors import CheckpointError, ConfigError
from pyramidpose.models.onnx_model import (
    META_CONFIG,
    META_KIND,
    META_PREFIX,
    _quiet_options,
    require_onnxruntime,
)
from pyramidpose.utils.io import write_bytes_atomic
from pyramidpose.utils.outputs import check_output_file

FP32_TOLERANCE = 1e-4  # max abs heatmap difference ONNX vs PyTorch (fp32)
FP16_TOLERANCE = 1e-2  # fp16 weights and activations vs the fp32 PyTorch model
OPSET = 17


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and the parity it measured."""

    path: Path
    max_abs_diff: float
    tolerance: float
    batch_sizes: tuple[int, ...]
    size_bytes: int

    def summary(self) -> str:
        return (
            f"wrote {self.path} ({self.size_bytes / 1e6:.1f} MB); parity vs PyTorch on batch(es) "
            f"{list(self.batch_sizes)}: max abs output diff {self.max_abs_diff:.2e} (<= {self.tolerance:g})"
        )


def export_onnx(
    model: nn.Module,
    out: str | os.PathLike[str],
    *,
    dynamic_batch: bool = False,
    fp16: bool = False,
    batch_size: int = 1,
    opset: int = OPSET,
    tolerance: float | None = None,
    seed: int = 0,
) -> ExportReport:
    """Write ``model`` (a :class:`~pyramidpose.models.pose_model.PoseModel`) to ``out`` as ONNX.

    ``dynamic_batch`` leaves the batch axis free (else fixed at ``batch_size``); ``fp16`` exports
    half-precision weights and input. Raises :class:`CheckpointError` (and writes nothing) when
    onnxruntime's heatmaps differ from PyTorch's by more than ``tolerance``.
    """
    require_onnxruntime("pyramidpose export")
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "to_dict") or getattr(cfg, "input_size", None) is None:
        raise ConfigError("export_onnx needs a pose model with a config (load it with load_model)")
    h, w = cfg.input_size
    meta = {
        META_KIND: "pose",
        META_CONFIG: json.dumps(cfg.to_dict()),
        META_PREFIX + "input_size": json.dumps(list(cfg.input_size)),
        META_PREFIX + "codec": str(cfg.codec),
        META_PREFIX + "keypoint_set": str(cfg.keypoint_set),
        META_PREFIX + "precision": "fp16" if fp16 else "fp32",
    }
    return _export(
        model, (3, h, w), ("input", "heatmaps"), meta, out, name=cfg.name, label="heatmap", dynamic_batch=dynamic_batch,
        fp16=fp16, batch_size=batch_size, opset=opset, tolerance=tolerance, seed=seed,
    )  # fmt: skip


def sequence_input_shape(kind: str, config: dict[str, Any]) -> tuple[int, ...]:
    """The per-sample input shape of a lifter or forecaster from its weights file's config.

    Lifters: the MLP takes one pose ``[J_in, 2]``; the temporal lifter one window of exactly its
    receptive field ``[RF, J_in, 2]`` (it returns the centre frame, ``[1, J_out, 3]``; slide it over a
    track). Forecasters: ``[t_in, K, D]`` observed frames.
    """
    model = config.get("model")
    if not isinstance(model, dict):
        raise ConfigError(f"a {kind} config needs a 'model' section to export")
    if kind == "lifter":
        joints = int(model.get("in_joints", 17))
        if model.get("kind", "temporal") == "mlp":
            return (joints, 2)
        return (int(model.get("receptive_field", 27)), joints, 2)
    if kind == "forecaster":
        return (int(model.get("t_in", 50)), int(model.get("num_joints", 17)), int(model.get("dims", 3)))
    raise ConfigError(f"cannot export a {kind!r} model (pose, lifter and forecaster can be exported)")


def export_sequence_onnx(
    model: nn.Module,
    kind: str,
    config: dict[str, Any],
    out: str | os.PathLike[str],
    *,
    dynamic_batch: bool = False,
    fp16: bool = False,
    batch_size: int = 1,
    opset: int = OPSET,
    tolerance: float | None = None,
    seed: int = 0,
) -> ExportReport:
    """Write a lifter or forecaster (``kind``) to ``out`` as ONNX, its weights file's ``config`` in the
    metadata; outputs compared with PyTorch before anything is written, as for pose models."""
    require_onnxruntime("pyramidpose export")
    shape = sequence_input_shape(kind, config)
    meta = {
        META_KIND: kind,
        META_CONFIG: json.dumps(config),
        META_PREFIX + "input_shape": json.dumps(list(shape)),
        META_PREFIX + "precision": "fp16" if fp16 else "fp32",
    }
    return _export(
        model, shape, ("input", "output"), meta, out, name=kind, label="output", dynamic_batch=dynamic_batch, fp16=fp16,
        batch_size=batch_size, opset=opset, tolerance=tolerance, seed=seed,
    )  # fmt: skip


def _export(
    model: nn.Module,
    shape: tuple[int, ...],
    names: tuple[str, str],
    meta: dict[str, str],
    out: str | os.PathLike[str],
    *,
    name: str,
    label: str,
    dynamic_batch: bool,
    fp16: bool,
    batch_size: int,
    opset: int,
    tolerance: float | None,
    seed: int,
) -> ExportReport:
    """Trace ``model`` on ``[batch, *shape]`` inputs, attach ``meta``, check parity with onnxruntime
    (the traced batch, and another size when the batch axis is free), then write atomically."""
    import onnx
    import onnxruntime as ort

    out = check_output_file(out)  # before any work
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    tol = float(tolerance if tolerance is not None else (FP16_TOLERANCE if fp16 else FP32_TOLERANCE))
    ref_model = model.to("cpu").float().eval()
    dtype = torch.float16 if fp16 else torch.float32
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(batch_size, *shape, generator=gen)
    traced = _half_copy(ref_model) if fp16 else ref_model
    in_name, out_name = names
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic (the shapes are fixed)
        torch.onnx.export(
            traced, (example.to(dtype),), buf, dynamo=False, opset_version=opset,
            input_names=[in_name], output_names=[out_name],
            dynamic_axes={in_name: {0: "batch"}, out_name: {0: "batch"}} if dynamic_batch else None,
        )  # fmt: skip
    proto = onnx.load_from_string(buf.getvalue())
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    sizes = (batch_size, batch_size + 2) if dynamic_batch else (batch_size,)
    data = proto.SerializeToString()
    session = ort.InferenceSession(data, _quiet_options(), providers=["CPUExecutionProvider"])
    worst = 0.0
    for n in sizes:
        x = torch.randn(n, *shape, generator=gen)
        with torch.no_grad():
            ref = ref_model(x).float().numpy()
        got = session.run(None, {in_name: x.numpy().astype(np.float16 if fp16 else np.float32)})[0]
        if got.shape != ref.shape:
            raise CheckpointError(f"ONNX export of {name}: output shape {got.shape} != PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(got.astype(np.float32) - ref).max()))
    if not worst <= tol:
        raise CheckpointError(
            f"ONNX export of {name} refused: max abs {label} difference vs PyTorch {worst:.3g} > {tol:g}; "
            f"{out} not written"
        )
    write_bytes_atomic(out, data)
    return ExportReport(out, worst, tol, sizes, len(data))


def _half_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).half().eval()
