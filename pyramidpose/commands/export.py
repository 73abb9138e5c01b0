"""``pyramidpose export --weights W --format onnx [--dynamic-batch] [--fp16] --out X.onnx``.

Writes a pose checkpoint (any head and neck), a lifter or a forecaster (pyramidpose .safetensors,
recognised by the kind they declare) as ONNX with its config in the metadata; the outputs are compared
with PyTorch before anything is written (see :mod:`pyramidpose.export`). A pose file runs with
``predict --weights X.onnx`` and ``pyramidpose.Pose("X.onnx")``.
"""

from __future__ import annotations

from pyramidpose.commands._args import ArgumentParser, int_range


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(
        prog="pyramidpose export",
        description="Export a pose checkpoint, a lifter or a forecaster to ONNX (config in the metadata, parity with PyTorch checked first).",
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
    kind = _weights_kind(args.weights)
    if kind in ("lifter", "forecaster"):
        from pyramidpose.export import export_sequence_onnx

        if kind == "lifter":
            from pyramidpose.lifting.experiment import load_lifter as load
        else:
            from pyramidpose.forecasting.train import load_forecaster as load
        seq_model, config = load(args.weights)
        report = export_sequence_onnx(
            seq_model, kind, config, args.out, dynamic_batch=args.dynamic_batch, fp16=args.fp16,
            batch_size=args.batch_size, opset=args.opset,
        )  # fmt: skip
        print(report.summary())
        return 0
    model = load_model(args.weights, device="cpu", dataset=dataset)
    if not hasattr(model, "backbone"):
        raise ConfigError(f"--weights {args.weights} is already an exported model; export its PyTorch checkpoint")
    report = export_onnx(
        model, args.out, dynamic_batch=args.dynamic_batch, fp16=args.fp16, batch_size=args.batch_size, opset=args.opset
    )
    print(report.summary())
    return 0


def _weights_kind(weights: str) -> str | None:
    """The ``kind`` a pyramidpose .safetensors file declares (pose2d, lifter, forecaster, ...), else None."""
    from pathlib import Path

    if not (str(weights).endswith(".safetensors") and Path(weights).is_file()):
        return None
    from pyramidpose.utils.weights_io import read_weights

    w = read_weights(weights)
    if w.kind != "unknown":
        return w.kind
    # old lifter/forecaster files (config in a JSON beside them) declare no kind: tell them by their config
    model = w.config.get("model") if isinstance(w.config.get("model"), dict) else {}
    if isinstance(w.config.get("data"), dict) and "t_in" in w.config["data"]:
        return "forecaster"
    if "receptive_field" in model or "in_joints" in model:
        return "lifter"
    return None
