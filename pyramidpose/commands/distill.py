"""``pyramidpose distill``: train a student with a teacher (knowledge distillation).

The same as ``pyramidpose train`` with the config's ``distill:`` section filled from the command line::

    pyramidpose distill configs/coco_mini_tiny.yaml --teacher blazepose --work-dir runs/kd
    pyramidpose distill CONFIG --teacher teacher.safetensors --knowledge-token 200 --work-dir runs/kt

``--teacher`` is any pose model pyramidpose runs (see ``distill.teacher`` in the config reference);
``--knowledge-token N`` first learns ViTPose's knowledge token for N steps with the frozen (heatmap)
teacher, saves it as ``WORK_DIR/knowledge_token.safetensors`` and trains the student with it frozen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyramidpose distill", description="Train a 2D pose student with a teacher.")
    p.add_argument("config", help="YAML training config of the student")
    p.add_argument("--teacher", required=True, help="teacher: a checkpoint load_model reads, or a backend name "
                   "(blazepose, ...) / ONNX model load_backend runs")  # fmt: skip
    p.add_argument("--work-dir", required=True, help="output directory")
    p.add_argument("--mode", choices=("auto", "heatmaps", "keypoints"), default=None, help="override distill.mode")
    p.add_argument("--knowledge-token", type=int, default=0, metavar="STEPS",
                   help="learn a knowledge token with the frozen teacher for STEPS steps first (heatmap teachers)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=None, help="stop the student after this many steps")
    p.add_argument("--seed", type=int, default=None, help="override train.seed")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable; values are YAML)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pyramidpose.training.config import load_config

    overrides = [f"distill.teacher={json.dumps(args.teacher)}", *args.overrides]
    if args.mode:
        overrides.append(f"distill.mode={args.mode}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    cfg = load_config(args.config, overrides)
    work = Path(args.work_dir)
    if args.knowledge_token > 0:
        from pyramidpose.training.distill import learn_knowledge_token, save_token

        token = learn_knowledge_token(cfg, args.teacher, args.knowledge_token)
        work.mkdir(parents=True, exist_ok=True)
        path = save_token(token, work / "knowledge_token.safetensors", args.teacher)
        cfg = load_config(args.config, [*overrides, f"distill.knowledge_token={json.dumps(str(path))}"])
    from pyramidpose.training.engine import train

    result = train(cfg, work, max_steps=args.max_steps)
    print(json.dumps(dict(result), indent=1, default=str))
    return 0
