"""``pyramidpose predict``: 2D keypoints for images, folders, globs and videos.

    pyramidpose predict --input PATH_OR_GLOB ... [--weights W] [--boxes FILE] [--out DIR] [--draw DIR]
    pyramidpose predict --weights W --image-dir DIR --boxes FILE --out results.json [--draw DIR]

With ``--input`` (or without ``--weights``/``--boxes``) the whole pipeline runs
(:mod:`pyramidpose.inference.pipeline`): the embedded BlazePose default when no ``--weights``, the
embedded person detector when no ``--boxes``; image sets give one COCO results JSON, each video a
``<name>.jsonl`` (one record per frame, with track ids) and an annotated ``<name>.mp4`` in the
``--out`` folder (``--out x.json`` names the results file; videos go beside it). The second form
is the original folder + boxes flow below.

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
    ap.add_argument(
        "--weights", default=None,
        help="checkpoint: official .pth, HF directory or .safetensors (default: the embedded BlazePose model)",
    )  # fmt: skip
    ap.add_argument("--image-dir", default=None, help="folder with the images")
    ap.add_argument(
        "--boxes", default=None,
        help="COCO detection results (list of {image_id, bbox, score}) or a COCO annotation file (GT boxes); "
        "default: run the embedded person detector",
    )  # fmt: skip
    ap.add_argument(
        "--out", default=None,
        help="output: COCO keypoint results JSON, or (pipeline) a folder for results.json, <video>.jsonl and "
        "<video>.mp4 (default ./predict_out)",
    )  # fmt: skip
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
    pipe = ap.add_argument_group("pipeline (images, folders, globs, videos)")
    pipe.add_argument(
        "--input", "-i", nargs="+", action="extend", default=[], metavar="PATH",
        help="images, folders, glob patterns (quote them) and videos",
    )  # fmt: skip
    pipe.add_argument(
        "--images-from", metavar="ANNOTATIONS.json", default=None,
        help="only the images a COCO annotation file lists (e.g. to evaluate detector boxes on its images)",
    )  # fmt: skip
    pipe.add_argument("--detector", choices=("blazepose", "hog"), default="blazepose", help="person detector without --boxes")
    pipe.add_argument(
        "--preset", choices=("accurate", "fast", "multiscale"), default="accurate",
        help="embedded model on images: accurate = aligned crop + flip test, fast = no flip, "
        "multiscale = 3 crop scales + flip (3x slower)",
    )  # fmt: skip
    pipe.add_argument("--video-preset", choices=("accurate", "fast", "multiscale"), default="fast", help="embedded model on video frames")
    pipe.add_argument("--track", action=argparse.BooleanOptionalAction, default=True, help="track ids across video frames")
    pipe.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=True, help="One-Euro smoothing per track (videos only)")
    pipe.add_argument("--smooth-min-cutoff", type=float, default=1.0, help="One-Euro cut-off at rest, Hz (lower = smoother)")
    pipe.add_argument("--smooth-beta", type=float, default=0.05, help="One-Euro speed coefficient (higher = less lag)")
    pipe.add_argument("--video-stride", type=int, default=1, help="use every N-th video frame")
    pipe.add_argument("--max-frames", type=int, default=None, help="stop each video after this many frames")
    pipe.add_argument("--detect-every", type=int, default=1, help="video: run the detector every N frames, follow poses in between")
    return ap


def _run_pipeline(args: argparse.Namespace) -> int:
    """The images/folders/globs/videos flow (issue 6)."""
    from pathlib import Path

    from pyramidpose.errors import ConfigError
    from pyramidpose.inference.pipeline import Pipeline, PipelineConfig
    from pyramidpose.inference.smoothing import OneEuroConfig

    if args.video_stride < 1 or args.detect_every < 1:
        raise ConfigError("--video-stride and --detect-every must be >= 1")
    inputs = list(args.input) + ([args.image_dir] if args.image_dir else [])
    if not inputs:
        raise ConfigError("nothing to do: give --input PATH (images, folders, globs, videos) or --image-dir")
    out = Path(args.out or "predict_out")
    results_path = out if out.suffix.lower() == ".json" else None
    out_dir = out.parent if results_path is not None else out
    vitpose = {}
    if args.weights is not None:
        dataset = int(args.dataset) if str(args.dataset).isdigit() else args.dataset
        vitpose = dict(
            dataset=dataset, flip_test=args.flip, decode=args.decode, batch_size=args.batch_size,
            precision=args.precision,
        )  # fmt: skip
    config = PipelineConfig(
        out_dir=out_dir, weights=args.weights, boxes=args.boxes, detector=args.detector,
        image_preset=args.preset, video_preset=args.video_preset, min_box_score=args.det_thr,
        track=args.track, smooth=args.smooth,
        one_euro=OneEuroConfig(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta),
        draw_dir=Path(args.draw) if args.draw else None, draw_threshold=args.draw_thr,
        video_stride=args.video_stride, max_frames=args.max_frames, detect_every=args.detect_every,
        progress=not args.no_progress, device=args.device, vitpose_options=vitpose,
        results_path=results_path,
    )  # fmt: skip
    pipeline = Pipeline(config)
    only = None
    if args.images_from:
        from pyramidpose.inference.pipeline import coco_file_names

        only = coco_file_names(args.images_from)
    report = pipeline.run(inputs, only_names=only)
    for line in report.lines():
        print(line, file=sys.stderr if line.startswith("skipped") else sys.stdout)
    print(
        f"{report.images} images, {len(report.videos)} videos, {report.people} people "
        f"(model: {pipeline.backend.name}); {len(report.skipped)} items skipped"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.input or not (args.weights and args.image_dir and args.boxes and args.out):
        return _run_pipeline(args)
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
    from pyramidpose.codecs.heatmap import HeatmapCodec
    from pyramidpose.inference.topdown import TopDownPredictor

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dataset = int(args.dataset) if str(args.dataset).isdigit() else args.dataset
    model = pyramidpose.load_model(args.weights, device=device, dataset=dataset)
    predictor = TopDownPredictor(
        model, codec=HeatmapCodec.from_config(model.config, method=args.decode), device=device, flip_test=args.flip,
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
