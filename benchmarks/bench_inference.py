"""ViTPose-B (classic decoder, 256x192) inference speed: pyramidpose vs transformers, same weights.

Both models run in this process on the same inputs, interleaved (A, B, B, A, ...) so that load from
other processes hits both alike; each cell is the median over repeats of ms per crop. Achieved
GFLOP/s uses the FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` for one forward,
compared with the machine's matmul peak measured here (a large ``torch.mm`` in fp32 and bf16).

The header names the machine (:func:`pyramidpose.utils.device.machine_summary`) and the precision
``auto`` picks on it (:func:`~pyramidpose.utils.device.choose_precision`: bf16 only where native);
``--dtypes auto`` times that one. ``--onnx`` adds the same model exported to ONNX, run by
onnxruntime with each installed execution provider (never assumed faster: measured here).

Run:  python benchmarks/bench_inference.py            (prints a markdown table)
      python benchmarks/bench_inference.py --repeats 5 --batches 1 8 --dtypes fp32 bf16
      python benchmarks/bench_inference.py --repeats 3 --batches 8 --dtypes auto --onnx
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
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["auto", "fp32", "bf16"])
    ap.add_argument("--onnx", action="store_true", help="also onnxruntime (fp32 export), per installed provider")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per cell (median is reported)")
    ap.add_argument("--hf-attn", default="sdpa", choices=["sdpa", "eager"], help="transformers attention")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from pyramidpose.utils.device import choose_precision, machine_summary

    auto = choose_precision("auto", "cpu")
    args.dtypes = list(dict.fromkeys(auto.name if d == "auto" else d for d in args.dtypes))
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
    print(f"machine: {machine_summary()}")
    print(f"precision chosen by auto: {auto.name} ({auto.reason})")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (the machine may be shared: compare ratios, not times)")
    print(f"max |pyramidpose - transformers| (fp32) = {diff:.2e}")
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
    if args.onnx:
        onnx_table(ours, args.batches, args.repeats, flops_per_crop, peaks.get("fp32") or matmul_peak(torch.float32))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


def onnx_table(model: torch.nn.Module, batches: list[int], repeats: int, flops: int, peak: float) -> None:
    """ms/crop of the fp32 ONNX export per installed onnxruntime provider vs torch fp32, interleaved."""
    import tempfile

    import onnxruntime as ort

    from pyramidpose.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        rep = export_onnx(model, f"{tmp}/m.onnx", dynamic_batch=True)
        print(f"\nONNX export: max abs heatmap diff vs torch {rep.max_abs_diff:.1e}")
        providers = [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]
        sessions = {p: ort.InferenceSession(str(rep.path), providers=[p]) for p in providers}
        print("| runtime | batch | torch fp32 ms/crop | runtime ms/crop | speed-up vs torch | GFLOP/s | % of fp32 peak |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for b in batches:
            x = torch.randn(b, 3, 256, 192)
            xn = x.numpy()
            for name, sess in sessions.items():
                sess.run(None, {"input": xn})  # warm-up
                t_torch, t_ort = [], []
                with torch.inference_mode():
                    model(x)
                    for r in range(repeats):
                        for which in (("torch", "ort") if r % 2 == 0 else ("ort", "torch")):
                            t = time.perf_counter()
                            model(x) if which == "torch" else sess.run(None, {"input": xn})
                            (t_torch if which == "torch" else t_ort).append((time.perf_counter() - t) / b * 1e3)
                a, o = statistics.median(t_torch), statistics.median(t_ort)
                g = flops / (o / 1e3) / 1e9
                print(f"| onnxruntime {name} | {b} | {a:.1f} | {o:.1f} | {a / o:.2f}x | {g:.0f} | {100 * g / peak:.0f}% |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
