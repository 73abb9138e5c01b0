"""Model cost figures for tables: parameters, GFLOPs (counted, not estimated) and CPU latency.

GFLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on one forward pass; it
counts a multiply-add as 2 FLOPs (so the numbers are about twice the "GFLOPs = GMACs" convention
some papers, including ViTPose, use) and covers matmuls/convolutions/attention, not element-wise ops.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_params_by_part(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level child module (e.g. backbone / neck / head)."""
    return {name: count_params(child) for name, child in model.named_children()}


@torch.no_grad()
def count_gflops(model: nn.Module, input_size: tuple[int, int] = (256, 192), batch: int = 1) -> float:
    """GFLOPs of one forward pass on a ``[batch, 3, H, W]`` input, counted by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa_flops(q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(q, k, v)

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, *input_size, device=device)
    try:
        # The fused CPU attention kernel has no formula in torch's table (it would count 0 FLOPs,
        # while masked/windowed attention falls back to counted bmm's): give it the SDPA one.
        cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
        counter = FlopCounterMode(display=False, custom_mapping={cpu_sdpa: cpu_sdpa_flops} if cpu_sdpa else None)
        with counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9 / batch


@torch.inference_mode()
def cpu_latency_ms(
    model: nn.Module,
    input_size: tuple[int, int] = (256, 192),
    warmup: int = 2,
    runs: int = 10,
    threads: int | None = None,
) -> dict[str, float]:
    """Per-crop CPU latency (batch 1, fp32, eval mode) in milliseconds.

    Returns wall-clock ``median``, ``min`` and ``max``, and ``cpu_median``: the median CPU time the
    process spent per forward pass (``time.process_time``). On a machine shared with other busy
    processes the wall time mostly measures waiting; with ``threads=1`` the CPU time is the
    single-thread latency the crop would have on an idle core. The model is copied to the CPU (the
    original is untouched); ``threads`` sets ``torch.set_num_threads`` for the measurement.
    """
    import copy

    m = copy.deepcopy(model).cpu().eval()
    x = torch.zeros(1, 3, *input_size)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            m(x)
        times, cpu = [], []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            m(x)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    finally:
        torch.set_num_threads(old_threads)
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "cpu_median": statistics.median(cpu),
    }


def model_stats(
    model: nn.Module, input_size: tuple[int, int] = (256, 192), latency_runs: int = 10
) -> dict[str, Any]:
    """Params, GFLOPs and CPU latency of ``model`` in one dict (keys used by the ablation table)."""
    stats: dict[str, Any] = {
        "params_m": count_params(model) / 1e6,
        "params_by_part": count_params_by_part(model),
        "gflops": count_gflops(model, input_size),
    }
    if latency_runs > 0:
        lat = cpu_latency_ms(model, input_size, runs=latency_runs)
        stats["latency_ms"] = lat["median"]
        stats["latency_min_ms"] = lat["min"]
        stats["cpu_ms"] = lat["cpu_median"]
    return stats
