"""Cost of each feature-pyramid variant against its baseline, measured in one process.

For every config: parameters, GFLOPs at 256x192 (counted by torch.utils.flop_counter.FlopCounterMode,
a multiply-add = 2 FLOPs) and fp32 batch-1 time per crop on 1 thread by default: CPU time (process time,
robust to other load on the machine) and wall time, plus the ratios to the first config (the
baseline), timed interleaved in the same process so machine load affects all alike.

    python benchmarks/pyramid_costs.py configs/vitpose_b_coco_256x192.yaml configs/vitpose_b_fpn_*.yaml
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="training configs; the first one is the reference")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--size", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads while timing (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from pyramidpose.evaluation.model_stats import count_gflops, count_params
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import build_model

    size = tuple(args.size)
    models = []
    for path in args.configs:
        m = build_model(load_config(path)).eval()
        models.append((path.split("/")[-1].removesuffix(".yaml"), m))
    x = torch.zeros(1, 3, *size)
    times: dict[str, list[float]] = {n: [] for n, _ in models}
    cpu: dict[str, list[float]] = {n: [] for n, _ in models}
    with torch.inference_mode():
        for _, m in models:  # warm-up
            m(x)
        for _ in range(args.rounds):
            for n, m in models:
                t0, c0 = time.perf_counter(), time.process_time()
                m(x)
                times[n].append((time.perf_counter() - t0) * 1e3)
                cpu[n].append((time.process_time() - c0) * 1e3)
    ref_name = models[0][0]
    ref_p, ref_f = count_params(models[0][1]), count_gflops(models[0][1], size)
    ref_t, ref_c = statistics.median(times[ref_name]), statistics.median(cpu[ref_name])
    print(
        f"{'config':32s} {'params M':>9s} {'GFLOPs':>8s} {'cpu ms':>8s} {'wall ms':>8s} "
        f"{'x params':>8s} {'x GFLOPs':>8s} {'x cpu':>6s} {'x wall':>6s}"
    )
    for n, m in models:
        p, f = count_params(m), count_gflops(m, size)
        t, c = statistics.median(times[n]), statistics.median(cpu[n])
        print(
            f"{n:32s} {p / 1e6:9.2f} {f:8.2f} {c:8.1f} {t:8.1f} "
            f"{p / ref_p:8.3f} {f / ref_f:8.3f} {c / ref_c:6.3f} {t / ref_t:6.3f}"
        )


if __name__ == "__main__":
    main()
