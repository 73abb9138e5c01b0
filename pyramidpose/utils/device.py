"""Device and numeric precision, chosen once from what the hardware offers.

bf16 autocast is only fast where the hardware computes in bf16 natively (CPUs with AMX or
AVX512-BF16, CUDA GPUs that report bf16 support); elsewhere PyTorch emulates it and a CPU run can be
25-70x slower than fp32. :func:`choose_precision` therefore looks before it picks:

- ``auto``: bf16 where native, fp16 with a GradScaler on CUDA without bf16, fp32 otherwise;
- an explicit ``bf16`` on hardware that emulates it is honoured with a warning giving the measured cost;
- ``fp16`` needs CUDA.

Every trainer and the predictor call it once and log :attr:`Precision.reason`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import platform
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from pyramidpose.errors import ConfigError

#: Names accepted wherever a precision is configured (``none`` is the old spelling of ``fp32``).
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16", "none")

#: /proc/cpuinfo flags that mean the CPU computes bf16 natively (x86 AMX / AVX512-BF16, Arm BF16).
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


@dataclass(frozen=True)
class Precision:
    """The numeric precision of a run: ``name`` is ``fp32``, ``bf16`` or ``fp16``; ``reason`` says why."""

    name: str
    device_type: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    @property
    def use_grad_scaler(self) -> bool:
        """fp16 training needs loss scaling; bf16 and fp32 do not."""
        return self.name == "fp16"

    def __str__(self) -> str:
        return f"precision {self.name} on {self.device_type} ({self.reason})"


def cpu_capability() -> str:
    """PyTorch's CPU kernel capability (``AVX2``, ``AVX512``, ``DEFAULT``...)."""
    return str(torch.backends.cpu.get_cpu_capability())


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_model() -> str:
    """The CPU model name (``Intel(R) Xeon(R) ...``), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def native_bf16_cpu() -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and the evidence (flags or capability)."""
    cap = cpu_capability()
    found = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()]
    if found:
        return True, f"{cap}, {'/'.join(found)}"
    if cap.upper() == "AMX":
        return True, cap
    return False, f"{cap}, no AMX or AVX512-BF16"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto``/None -> CUDA when available, else CPU; an unavailable or unknown device is a one-line
    :class:`ConfigError`."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{name}' requested but CUDA is not available here; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"device '{name}' requested but MPS is not available here; use cpu or auto")
    return dev


def emulated_bf16_cost(size: int = 384, repeats: int = 3) -> float:
    """How many times slower a bf16 matmul is than fp32 on this CPU (measured now, best of ``repeats``)."""
    a = torch.randn(size, size)
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = a.to(dtype)
        x @ x  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            x @ x
            best = min(best, time.perf_counter() - t0)
        times[dtype] = best
    return times[torch.bfloat16] / max(times[torch.float32], 1e-9)


def choose_precision(requested: str = "auto", device: str | torch.device = "cpu") -> Precision:
    """The precision to run in on ``device`` given the ``requested`` one (see the module docstring)."""
    req = {"none": "fp32"}.get(requested, requested)
    if req not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"precision '{requested}' is not one of auto, fp32, bf16, fp16")
    dev = torch.device(device)
    if dev.type == "cuda":
        bf16_ok = bool(torch.cuda.is_bf16_supported())
        if req == "auto":
            if bf16_ok:
                return Precision("bf16", "cuda", "auto: this GPU supports bf16")
            return Precision("fp16", "cuda", "auto: this GPU has no bf16; fp16 with a GradScaler")
        if req == "bf16" and not bf16_ok:
            warnings.warn("bf16 requested on a GPU without bf16 support; it will be emulated and slow", stacklevel=2)
            return Precision("bf16", "cuda", "requested; emulated on this GPU")
        return Precision(req, "cuda", "requested")
    if req == "fp16":
        raise ConfigError(f"fp16 precision needs CUDA (with a GradScaler); on {dev.type} use auto, fp32 or bf16")
    if dev.type != "cpu":
        return Precision("fp32" if req == "auto" else req, dev.type, "auto: fp32 on this device" if req == "auto" else "requested")
    native, evidence = native_bf16_cpu()
    if req == "auto":
        if native:
            return Precision("bf16", "cpu", f"auto: native bf16 on this CPU ({evidence})")
        return Precision("fp32", "cpu", f"auto: bf16 would be emulated on this CPU ({evidence})")
    if req == "bf16" and not native:
        cost = emulated_bf16_cost()
        msg = (
            f"bf16 requested but this CPU emulates it ({evidence}): a bf16 matmul measured {cost:.1f}x "
            "slower than fp32 here; use precision auto or fp32"
        )
        warnings.warn(msg, stacklevel=2)
        return Precision("bf16", "cpu", f"requested; emulated, {cost:.1f}x slower matmul than fp32")
    return Precision(req, "cpu", "requested" + (f" ({evidence})" if req == "bf16" else ""))


def autocast_context(precision: Precision) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in the precision's dtype, or a no-op context for fp32."""
    if precision.name == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=precision.device_type, dtype=precision.dtype)


def low_precision_copy(model: nn.Module, precision: Precision) -> nn.Module:
    """For inference under bf16/fp16 autocast: a copy of ``model`` (in eval mode) whose Linear and
    Conv weights are already in the low dtype, so autocast does not re-cast them on every call
    (norms stay fp32, as autocast runs them; the numerics are those of plain autocast). For fp32
    the model itself is returned."""
    if precision.name == "fp32":
        return model
    twin = copy.deepcopy(model).eval()
    for m in twin.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Conv1d)):
            m.to(precision.dtype)
    return twin


def machine_summary() -> str:
    """One line: CPU model, kernel capability, native bf16 or not, torch threads, GPU (if any)."""
    native, evidence = native_bf16_cpu()
    gpu = "no GPU"
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        gpu = "GPU " + ", ".join(names)
    return (
        f"{cpu_model()}; capability {evidence}; native bf16 {'yes' if native else 'no'}; "
        f"{torch.get_num_threads()} torch threads of {os.cpu_count()} CPUs; {gpu}"
    )
