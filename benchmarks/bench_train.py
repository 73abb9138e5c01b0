"""Training throughput, fp32 vs bf16 autocast, measured in the same process.

Runs full training steps (forward, MSE loss, backward, clipped AdamW step) of the model described by
a training config on real coco-mini crops decoded once up front (so the JPEG decoding does not mask
the difference), alternating fp32 and bf16 rounds and reporting the median images/s of each and
their ratio. Usage::

    python benchmarks/bench_train.py [--config configs/coco_mini_tiny.yaml] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "coco_mini_tiny.yaml"))
    ap.add_argument("--rounds", type=int, default=5, help="alternating fp32/bf16 rounds")
    ap.add_argument("--steps", type=int, default=5, help="training steps per round")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the config's train.batch_size")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    import torch

    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import build_model, collate, make_dataset
    from pyramidpose.training.losses import KeypointMSELoss
    from pyramidpose.training.optim import build_optimizer
    from pyramidpose.utils.device import Precision, autocast_context, choose_precision, machine_summary

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    bs = args.batch_size or cfg.train.batch_size
    ds = make_dataset(cfg, True)
    batch = collate([ds[(i % len(ds), (0, 0, i))] for i in range(bs)])
    torch.manual_seed(0)
    crit = KeypointMSELoss()
    models = {}
    for amp in ("none", "bf16"):
        torch.manual_seed(0)
        m = build_model(cfg).train()
        models[amp] = (m, build_optimizer(m, cfg.optim))
    precisions = {"none": Precision("fp32", "cpu", "measured"), "bf16": Precision("bf16", "cpu", "measured")}

    def run(amp: str, steps: int) -> float:
        m, opt = models[amp]
        t0 = time.perf_counter()
        for _ in range(steps):
            with autocast_context(precisions[amp]):
                out = m(batch["image"])
            loss = crit(out.float(), batch["target"], batch["target_weight"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return steps * bs / (time.perf_counter() - t0)

    for amp in models:  # warm-up
        run(amp, 1)
    rates: dict[str, list[float]] = {"none": [], "bf16": []}
    for _ in range(args.rounds):
        for amp in ("none", "bf16"):
            rates[amp].append(run(amp, args.steps))
    fp32, bf16 = statistics.median(rates["none"]), statistics.median(rates["bf16"])
    print(f"machine: {machine_summary()}; auto would choose {choose_precision('auto', 'cpu')}")
    print(
        f"model {cfg.model.name} ({cfg.model.head} head) input {cfg.model.input_size[0]}x{cfg.model.input_size[1]}, "
        f"batch {bs}, torch threads {torch.get_num_threads()}, {args.rounds} rounds x {args.steps} steps"
    )
    print(f"fp32: {fp32:.1f} images/s (rounds: {', '.join(f'{r:.1f}' for r in rates['none'])})")
    print(f"bf16: {bf16:.1f} images/s (rounds: {', '.join(f'{r:.1f}' for r in rates['bf16'])})")
    print(f"bf16 / fp32 speed ratio: {bf16 / fp32:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
