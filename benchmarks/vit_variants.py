"""Cost of ViTPose's efficiency variants beside the global-attention model, measured in one process.

For ViTPose-B (by default) at each input size: parameters, GFLOPs (counted by
torch.utils.flop_counter.FlopCounterMode, a multiply-add = 2 FLOPs) and fp32 batch-1 CPU time per
crop on 1 thread (process time, robust to other load on a shared machine), plus the ratio to the
global model of the same size. Models are timed interleaved, round by round, so machine load hits
all alike; the printed ratios are what to compare across machines.

    python benchmarks/vit_variants.py --sizes 256x192 512x384 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import pyramidpose


def _variants(depth: int, window: tuple[int, int]) -> dict[str, dict]:
    """Name -> create_model overrides. Window models keep a global block every 4th block (ViTDet
    style: blocks 3, 7, 11 of ViT-B) and use the window kind in the others."""

    def every4(kind: str) -> tuple[str, ...]:
        return tuple("global" if i % 4 == 3 else kind for i in range(depth))

    alt = tuple("global" if i % 4 == 3 else ("window", "shifted")[i % 2] for i in range(depth))
    return {
        "global (ViTPose)": {},
        f"window {window[0]}x{window[1]}": {"attention": every4("window"), "window_size": window},
        f"window+shifted {window[0]}x{window[1]}": {"attention": alt, "window_size": window},
        f"pooled {window[0]}x{window[1]}": {"attention": every4("pooled"), "window_size": window},
        "overlap stride 8": {"patch_ratio": 2},
        f"overlap stride 8 + window {window[0] * 2}x{window[1] * 2}": {
            "patch_ratio": 2, "attention": every4("window"), "window_size": (window[0] * 2, window[1] * 2),
        },
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vitpose-b")
    ap.add_argument("--sizes", nargs="+", default=["256x192"], help="input sizes HxW")
    ap.add_argument("--window", default="8x6", help="window in tokens (HxW) of the stride-16 models")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads while timing (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from pyramidpose.evaluation.model_stats import count_gflops, count_params

    window = tuple(int(v) for v in args.window.split("x"))
    print(f"{args.model}, fp32, batch 1, {args.threads} thread(s), {args.rounds} rounds; machine: {_cpu()}")
    print("| input | variant | params (M) | GFLOPs | CPU ms/crop | GFLOPs ratio | time ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for size_text in args.sizes:
        size = tuple(int(v) for v in size_text.split("x"))
        depth = pyramidpose.create_model(args.model, input_size=size).config.depth
        models = {
            name: pyramidpose.create_model(args.model, input_size=size, **kw).eval()
            for name, kw in _variants(depth, window).items()
        }
        x = torch.zeros(1, 3, *size)
        cpu: dict[str, list[float]] = {n: [] for n in models}
        with torch.inference_mode():
            for m in models.values():
                m(x)  # warm-up
            for _ in range(args.rounds):
                for name, m in models.items():
                    c0 = time.process_time()
                    m(x)
                    cpu[name].append((time.process_time() - c0) * 1e3)
        ref = next(iter(models))
        ref_g, ref_t = count_gflops(models[ref], size), statistics.median(cpu[ref])
        for name, m in models.items():
            g, t = count_gflops(m, size), statistics.median(cpu[name])
            print(f"| {size_text} | {name} | {count_params(m) / 1e6:.1f} | {g:.1f} | {t:.0f} "
                  f"| {g / ref_g:.2f} | {t / ref_t:.2f} |")  # fmt: skip


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
