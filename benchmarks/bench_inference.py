"""ViTPose-B (classic decoder, 256x192) inference speed: pyramidpose vs transformers, same weights.

Both models run in this process on the same inputs, interleaved (A, B, B, A, ...) so that load from
other processes hits both alike; each cell is the median over repeats of ms per crop. Achieved
GFLOP/s uses the FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` for one forward,
compared with the machine's matmul peak measured here (a large ``torch.mm`` in fp32 and bf16).

Run:  python benchmarks/bench_inference.py            (prints a markdown table)
      python benchmarks/bench_inference.py --repeats 5 --batches 1 8 --dtypes fp32 bf16
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import torch


def _hf_model(attn: str) -> torch.nn.Module:
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    bb = VitPoseBackboneConfig(image_size=[256, 192], layer_norm_eps=1e-6, out_indices=[12])
    bb._attn_implementation = attn  # the backbone holds the attention; the top level refuses "sdpa"
    cfg = VitPoseConfig(backbone_config=bb, use_simple_decoder=False, num_labels=17)
    with torch.device("meta"):
        model = VitPoseForPoseEstimation(cfg)
    model = model.to_empty(device="cpu").eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.uniform_(-0.035, 0.035, generator=g)
        for m in model.modules():
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)):
                m.weight.fill_(1.0)
                m.bias.zero_()
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return model


def _ours_from(hf: torch.nn.Module) -> torch.nn.Module:
    from pyramidpose.models.checkpoints import convert_hf_state_dict, infer_config, load_state_dict_strict
    from pyramidpose.models.pose_model import PoseModel

    sd = convert_hf_state_dict(hf.state_dict())
    model = PoseModel(infer_config(sd))
    load_state_dict_strict(model, sd, "transformers weights")
    return model.eval()


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """Best GFLOP/s of an n x n x n torch.mm in ``dtype`` (the machine's practical peak)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def count_flops(model: torch.nn.Module, x: torch.Tensor, call) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        call(model, x)
    return fc.get_total_flops()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per cell (median is reported)")
    ap.add_argument("--hf-attn", default="sdpa", choices=["sdpa", "eager"], help="transformers attention")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    hf = _hf_model(args.hf_attn)
    ours = _ours_from(hf)

    def run_hf(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return m(pixel_values=x).heatmaps

    def run_ours(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return m(x)

    used_attn = hf.backbone.config._attn_implementation
    x1 = torch.randn(1, 3, 256, 192)
    with torch.inference_mode():
        diff = (run_ours(ours, x1) - run_hf(hf, x1)).abs().max().item()
    flops_per_crop = count_flops(ours, x1, run_ours)
    flops_hf = count_flops(hf, x1, run_hf)
    peaks = {d: matmul_peak(torch.float32 if d == "fp32" else torch.bfloat16) for d in args.dtypes}

    print(f"# ViTPose-B classic 256x192 inference, CPU, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"load average at start: {os.getloadavg()[0]:.2f}; max |pyramidpose - transformers| (fp32) = {diff:.2e}")
    print(f"transformers attention implementation: {used_attn}")
    print(f"FLOPs per crop: pyramidpose {flops_per_crop / 1e9:.2f} G, transformers {flops_hf / 1e9:.2f} G")
    print("matmul peak: " + ", ".join(f"{d} {p:.0f} GFLOP/s" for d, p in peaks.items()))
    print()
    print("| dtype | batch | transformers ms/crop | pyramidpose ms/crop | speed-up | pyramidpose GFLOP/s | % of matmul peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for dt in args.dtypes:
        for b in args.batches:
            x = torch.randn(b, 3, 256, 192)
            ctx = (
                (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
                if dt == "bf16"
                else contextlib.nullcontext
            )
            impls = {"hf": (hf, run_hf), "ours": (ours, run_ours)}
            times: dict[str, list[float]] = {"hf": [], "ours": []}
            with torch.inference_mode():
                for m, fn in impls.values():  # warm-up
                    with ctx():
                        fn(m, x)
                        fn(m, x)
                for r in range(args.repeats):
                    order = ["hf", "ours"] if r % 2 == 0 else ["ours", "hf"]
                    for name in order:
                        m, fn = impls[name]
                        with ctx():
                            t = time.perf_counter()
                            fn(m, x)
                            times[name].append((time.perf_counter() - t) / b * 1e3)
            hf_ms, our_ms = statistics.median(times["hf"]), statistics.median(times["ours"])
            gflops = flops_per_crop / (our_ms / 1e3) / 1e9
            ok &= our_ms <= hf_ms
            print(
                f"| {dt} | {b} | {hf_ms:.1f} | {our_ms:.1f} | {hf_ms / our_ms:.2f}x | {gflops:.0f} | "
                f"{100 * gflops / peaks[dt]:.0f}% |",
                flush=True,
            )
    print()
    print("pyramidpose no slower than transformers in every setting:", "yes" if ok else "NO")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
