"""``pyramidpose export --weights W --format onnx [--dynamic-batch] [--fp16] --out X.onnx``.

Writes a pose checkpoint (any head and neck) as ONNX with its config in the metadata; the heatmaps
are compared with PyTorch before anything is written (see :mod:`pyramidpose.export`). The file runs
with ``predict --weights X.onnx`` and ``pyramidpose.Pose("X.onnx")``.
"""

from __future__ import annotations

from pyramidpose.commands._args import ArgumentParser, int_range


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(
        prog="pyramidpose export",
        description="Export a pose checkpoint to ONNX (config in the metadata, parity with PyTorch checked first).",
    )
    ap.add_argument("--weights", required=True, help="checkpoint: .safetensors, official .pth, HF directory or zoo name")
    ap.add_argument("--format", choices=("onnx",), default="onnx", help="output format")
    ap.add_argument("--out", required=True, help="output file (X.onnx)")
    ap.add_argument("--dynamic-batch", action="store_true", help="free batch axis (default: fixed at --batch-size)")
    ap.add_argument("--batch-size", type=int_range(1), default=1, help="the fixed batch size without --dynamic-batch")
    ap.add_argument("--fp16", action="store_true", help="half-precision weights and input (parity tolerance 1e-2)")
    ap.add_argument("--opset", type=int_range(13), default=17, help="ONNX opset")
    ap.add_argument("--dataset", default="0", help="ViTPose+ expert baked into the file (index or name)")
    args = ap.parse_args(argv)

    from pyramidpose.errors import ConfigError
    from pyramidpose.export import export_onnx
    from pyramidpose.models.checkpoints import load_model
    from pyramidpose.utils.outputs import check_output_file

    if not str(args.out).lower().endswith(".onnx"):
        raise ConfigError(f"--out {args.out}: give a file name ending in .onnx")
    check_output_file(args.out)  # before loading anything
    dataset = int(args.dataset) if str(args.dataset).isdigit() else args.dataset
    model = load_model(args.weights, device="cpu", dataset=dataset)
    if not hasattr(model, "backbone"):
        raise ConfigError(f"--weights {args.weights} is already an exported model; export its PyTorch checkpoint")
    report = export_onnx(
        model, args.out, dynamic_batch=args.dynamic_batch, fp16=args.fp16, batch_size=args.batch_size, opset=args.opset
    )
    print(report.summary())
    return 0
