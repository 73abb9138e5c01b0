"""``pyramidpose predict``: 2D keypoints for a folder of images with given person boxes.

    pyramidpose predict --weights W --image-dir DIR --boxes FILE --out results.json [--draw DIR]

Boxes come from a COCO detection-results file (``[{image_id, bbox, score}, ...]``, filtered with
``--det-thr``) or, given a COCO annotation file, its ground-truth person boxes. Writes COCO keypoint
results (one entry per box, original image coordinates) atomically. The work itself is
:func:`pyramidpose.inference.image_set.run_image_set`.
"""

from __future__ import annotations

import argparse
import sys

DECODES = ("dark_udp", "udp", "dark", "msra")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so other front ends can extend it)."""
    ap = argparse.ArgumentParser(
        prog="pyramidpose predict",
        description="Top-down 2D keypoints for images with given person boxes (COCO results JSON).",
    )
    ap.add_argument("--weights", required=True, help="checkpoint: official .pth, HF directory or .safetensors")
    ap.add_argument("--image-dir", required=True, help="folder with the images")
    ap.add_argument(
        "--boxes", required=True,
        help="COCO detection results (list of {image_id, bbox, score}) or a COCO annotation file (GT boxes)",
    )  # fmt: skip
    ap.add_argument("--out", required=True, help="output COCO keypoint results JSON")
    ap.add_argument("--draw", metavar="DIR", help="also write skeleton overlays into DIR")
    ap.add_argument("--draw-thr", type=float, default=0.3, help="keypoint score threshold for drawing")
    ap.add_argument("--det-thr", type=float, default=0.0, help="drop detections scoring below this")
    ap.add_argument(
        "--oks-nms", type=float, default=None, metavar="THR",
        help="greedy OKS-NMS per image at this OKS (0.9 reproduces the ViTPose/MMPose evaluation); off by default",
    )  # fmt: skip
    ap.add_argument(
        "--mmpose-gt-boxes", action="store_true",
        help="with an annotation file: MMPose's GT-box protocol (only persons with keypoints, boxes 1 px smaller)",
    )  # fmt: skip
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: cuda if available)")
    ap.add_argument("--batch-size", type=int, default=32, help="crops per forward pass")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test")
    ap.add_argument("--decode", choices=DECODES, default="dark_udp", help="heatmap decoding (ViTPose: dark_udp)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 autocast is faster on CPUs with AMX")
    ap.add_argument("--dataset", default="0", help="ViTPose+ expert (index or name, e.g. coco, aic, mpii)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pyramidpose.errors import ConfigError
    from pyramidpose.inference.image_set import load_box_file, run_image_set
    from pyramidpose.utils.io import write_json_atomic

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    jobs, missing = load_box_file(args.boxes, args.image_dir, det_thr=args.det_thr, mmpose_gt=args.mmpose_gt_boxes)
    for name, reason in missing:
        print(f"skipped: {name}: {reason}", file=sys.stderr)

    import torch

    import pyramidpose
    from pyramidpose.inference.topdown import TopDownPredictor

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dataset = int(args.dataset) if str(args.dataset).isdigit() else args.dataset
    model = pyramidpose.load_model(args.weights, device=device, dataset=dataset)
    predictor = TopDownPredictor(
        model, device=device, flip_test=args.flip, decode=args.decode,
        batch_size=args.batch_size, precision=args.precision,
    )  # fmt: skip
    summary = run_image_set(
        predictor, jobs, draw_dir=args.draw, draw_threshold=args.draw_thr, oks_nms_thr=args.oks_nms,
        progress=not args.no_progress,
    )
    summary.skipped_images += len(missing)
    write_json_atomic(args.out, summary.results)
    print(f"{summary.line()}; {len(summary.results)} poses written to {args.out}")
    return 0
