"""``pyramidpose predict``: 2D keypoints for images, folders, globs and videos.

    pyramidpose predict --input PATH_OR_GLOB ... [--model M | --weights W] [--boxes FILE] [--out DIR|x.json] [--draw DIR]

One flow, the pipeline (:mod:`pyramidpose.inference.pipeline`): the embedded model preset
``--model`` (default ``accurate``: MoveNet Thunder on NanoDet boxes) when no ``--weights``, the
preset's person detector when no ``--boxes``; image sets give one COCO results
JSON, each video a ``<name>.jsonl`` (one record per frame, with track ids) and an annotated
``<name>.mp4`` in the ``--out`` folder (``--out x.json`` names the results file; videos go beside
it). ``--image-dir DIR`` is the same as ``--input DIR``.

``torchrun --nproc_per_node N -m pyramidpose predict ...`` shares the images and videos out by rank
(gloo on CPU, one GPU each on CUDA); each rank journals its images, rank 0 merges the journals into
the one results file a single process would write and prints the merged report.

Boxes come from a COCO detection-results file (``[{image_id, bbox, score}, ...]``, filtered with
``--det-thr``) or, given a COCO annotation file, its ground-truth person boxes (``--mmpose-gt-boxes``:
MMPose's protocol), read by :func:`pyramidpose.data.boxes.load_box_file`. Image files are matched to
the file's image ids by the annotation file's ``file_name`` (``--images-from`` gives one for a
detection list whose ids are not file names), else by file stem. Every option is honoured or the
command stops with a one-line error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from pyramidpose.commands._args import ArgumentParser, float_range, positive_float, positive_int, unit_float
from pyramidpose.inference.backends import DETECTORS, PRESETS

if TYPE_CHECKING:
    from pyramidpose.inference.pipeline import PipelineConfig

DECODES = ("dark_udp", "udp", "dark", "msra")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so other front ends can extend it)."""
    ap = ArgumentParser(
        prog="pyramidpose predict",
        description="2D keypoints for images, folders, globs, videos, cameras and stream URLs.",
        epilog="Exit status: 0 all done; 1 nothing could be processed or an output failed to write (an "
        "existing results file is kept); 2 a usage or input error before any work; 3 done, but some "
        "inputs were skipped (listed on stderr). An interrupted image run keeps the finished images in "
        "a journal beside the results file; running the same command again skips them.",
    )
    ap.add_argument(
        "--weights", default=None,
        help="checkpoint: official .pth, HF directory or .safetensors, or a model preset "
        f"({', '.join(PRESETS)}; default: --model)",
    )  # fmt: skip
    ap.add_argument("--image-dir", default=None, help="folder with the images (the same as --input DIR)")
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
    ap.add_argument("--draw-thr", type=unit_float, default=0.3, help="keypoints scoring at or below this are not drawn")
    ap.add_argument("--draw-instance-thr", type=unit_float, default=0.2, help="people scoring below this are not drawn")
    ap.add_argument("--kpt-radius", type=positive_int, default=None, help="keypoint dot radius in pixels (default: from the image size)")
    ap.add_argument("--line-width", type=positive_int, default=None, help="limb line width in pixels (default: from the image size)")
    ap.add_argument("--draw-scores", action="store_true", help="write each person's score on the overlays")
    ap.add_argument("--det-thr", type=unit_float, default=0.0, help="drop detections scoring below this")
    ap.add_argument(
        "--oks-nms", type=positive_float, default=None, metavar="THR",
        help="greedy OKS-NMS per image at this OKS (0.9 reproduces the ViTPose/MMPose evaluation); off by default; "
        "with --pose-nms soft-oks: the Gaussian's sigma (default 0.3)",
    )  # fmt: skip
    ap.add_argument(
        "--pose-nms", choices=("oks", "soft-oks", "parametric"), default=None,
        help="pose NMS per image: greedy OKS-NMS, soft OKS-NMS (scores decay) or AlphaPose's parametric "
        "pose NMS; off by default (--oks-nms THR alone means oks)",
    )  # fmt: skip
    ap.add_argument(
        "--mmpose-gt-boxes", action="store_true",
        help="with an annotation file: MMPose's GT-box protocol (only persons with keypoints, boxes 1 px smaller)",
    )  # fmt: skip
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: cuda if available)")
    vit = ap.add_argument_group("heatmap checkpoints (--weights)")
    vit.add_argument("--batch-size", type=positive_int, default=None, help="crops per forward pass (default 32)")
    vit.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="flip test (default on)")
    vit.add_argument(
        "--decode", choices=DECODES, default=None,
        help="heatmap decoding (default: the model's codec with DARK; ViTPose: dark_udp)",
    )  # fmt: skip
    vit.add_argument(
        "--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
        help="default auto: bf16 where the hardware has it natively (AMX/AVX512-BF16 CPUs, bf16 GPUs), else fp32",
    )  # fmt: skip
    vit.add_argument("--dataset", default=None, help="ViTPose+ expert (index or name, e.g. coco, aic, mpii; default 0)")
    vit.add_argument("--heatmap-sr", default=None, metavar="SR.safetensors",
                     help="heatmap super-resolution stage before decoding (pyramidpose.models.heatmap_sr)")  # fmt: skip
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    pipe = ap.add_argument_group("pipeline (images, folders, globs, videos, cameras, URLs)")
    pipe.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="images, folders, glob patterns (quote them), videos, a camera index (0) or an "
        "http(s)://, rtsp://... stream; same as --input",
    )  # fmt: skip
    pipe.add_argument(
        "--input", "-i", nargs="+", action="extend", default=[], metavar="PATH",
        help="images, folders, glob patterns (quote them) and videos",
    )  # fmt: skip
    pipe.add_argument(
        "--images-from", metavar="ANNOTATIONS.json", default=None,
        help="only the images a COCO annotation file lists, with its image ids (e.g. to evaluate detector "
        "boxes on its images, or for a boxes file whose ids are not file names)",
    )  # fmt: skip
    pipe.add_argument(
        "--detector", choices=tuple(DETECTORS), default=None,
        help="person detector without --boxes (default: the model preset's, else nanodet)",
    )  # fmt: skip
    pipe.add_argument(
        "--model", choices=tuple(PRESETS), default=None,
        help="embedded model preset (the same as --weights NAME): accurate = MoveNet Thunder on NanoDet boxes "
        "(default on images), fast = MoveNet Lightning on NanoDet boxes (default on videos: about 3x the "
        "frames per second), bottomup = MoveNet MultiPose (up to 6 people, "
        "no detector), blazepose* = BlazePose-full (needs pip install 'pyramidpose[blazepose]')",
    )  # fmt: skip
    pipe.add_argument(
        "--preset", choices=("accurate", "fast", "multiscale"), default="accurate",
        help="BlazePose models on images: accurate = aligned crop + flip test, fast = no flip, "
        "multiscale = 3 crop scales + flip (3x slower)",
    )  # fmt: skip
    pipe.add_argument("--video-preset", choices=("accurate", "fast", "multiscale"), default="fast", help="BlazePose models on video frames")
    pipe.add_argument("--track", action=argparse.BooleanOptionalAction, default=True, help="track ids across video frames")
    pipe.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=True, help="One-Euro smoothing per track (videos only)")
    pipe.add_argument("--smooth-min-cutoff", type=positive_float, default=1.0, help="One-Euro cut-off at rest, Hz (lower = smoother)")
    pipe.add_argument("--smooth-beta", type=float_range(0.0), default=0.05, help="One-Euro speed coefficient (higher = less lag)")
    pipe.add_argument("--video-stride", type=positive_int, default=1, help="use every N-th video frame")
    pipe.add_argument("--max-frames", type=positive_int, default=None, help="stop each video after this many frames")
    pipe.add_argument("--detect-every", type=positive_int, default=5, help="video: run the detector every N frames, follow poses in between (1: every frame)")
    pipe.add_argument("--max-people", type=positive_int, default=None,
                      help="video: at most N people per frame, the best-scoring ones; while N are followed the "
                      "detector is skipped (default: everyone found)")  # fmt: skip
    pipe.add_argument("--mp4-preset", default="ultrafast",
                      choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"),
                      help="x264 speed preset of the annotated MP4: slower presets make smaller files")  # fmt: skip
    return ap


def _draw_style(args: argparse.Namespace):
    """The overlay style the drawing flags ask for."""
    from pyramidpose.viz.draw import DrawStyle

    return DrawStyle(
        keypoint_threshold=args.draw_thr, instance_threshold=args.draw_instance_thr,
        kpt_radius=args.kpt_radius, line_width=args.line_width, show_scores=args.draw_scores,
    )  # fmt: skip


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The :class:`PipelineConfig` of parsed ``predict`` options (``--model`` already merged into
    ``args.weights``); also what ``benchmarks/bench_pipeline.py`` times as the default pipeline."""
    from pathlib import Path

    from pyramidpose.inference.pipeline import PipelineConfig
    from pyramidpose.inference.smoothing import OneEuroConfig

    out = Path(args.out or "predict_out")
    results_path = out if out.suffix.lower() == ".json" else None
    out_dir = out.parent if results_path is not None else out
    vitpose = {}
    if args.weights is not None and args.weights not in PRESETS:  # a checkpoint
        dataset = args.dataset or "0"
        vitpose = dict(
            dataset=int(dataset) if str(dataset).isdigit() else dataset, decode=args.decode,
            flip_test=True if args.flip is None else args.flip, batch_size=args.batch_size or 32,
            precision=args.precision or "auto", heatmap_sr=args.heatmap_sr,
        )  # fmt: skip
    return PipelineConfig(
        out_dir=out_dir, weights=args.weights, boxes=args.boxes, mmpose_gt_boxes=args.mmpose_gt_boxes,
        images_from=args.images_from, oks_nms=args.oks_nms, pose_nms=args.pose_nms, detector=args.detector,
        image_preset=args.preset, video_preset=args.video_preset, min_box_score=args.det_thr,
        track=args.track, smooth=args.smooth,
        one_euro=OneEuroConfig(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta),
        draw_dir=Path(args.draw) if args.draw else None, draw_style=_draw_style(args),
        video_stride=args.video_stride, max_frames=args.max_frames, detect_every=args.detect_every,
        max_people=args.max_people, mp4_preset=args.mp4_preset,
        progress=not args.no_progress, device=args.device, vitpose_options=vitpose,
        results_path=results_path,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse the options, check them, run the pipeline, print the report."""
    from pyramidpose.errors import ConfigError
    from pyramidpose.inference.pipeline import Pipeline, coco_file_names

    args = build_parser().parse_args(argv)
    args.input = list(args.inputs) + list(args.input)
    from pyramidpose.utils.outputs import check_output_dir, check_output_file

    out = str(args.out or "predict_out")  # checked before any model is loaded
    check_output_file(out) if out.lower().endswith(".json") else check_output_dir(out)
    if args.draw:
        check_output_dir(args.draw, "--draw")
    if args.device is not None:
        from pyramidpose.api import check_device

        args.device = check_device(args.device)  # "--device cuda" on a CPU build: one line, now
    if args.model is not None:
        if args.weights is not None and args.weights != args.model:
            raise ConfigError(f"--model {args.model} and --weights {args.weights} name two models; give one")
        args.weights = args.model
    if args.mmpose_gt_boxes and not args.boxes:
        raise ConfigError("--mmpose-gt-boxes needs --boxes with a COCO annotation file")
    vit_only = [f"--{n.replace('_', '-')}" for n in ("batch_size", "flip", "decode", "precision", "dataset", "heatmap_sr")
                if getattr(args, n) is not None]  # fmt: skip
    checkpoint = args.weights is not None and args.weights not in PRESETS
    if not checkpoint and vit_only:
        raise ConfigError(
            f"{', '.join(vit_only)} apply to heatmap checkpoints given with --weights; the embedded model "
            "is tuned with --preset / --video-preset"
        )
    inputs = list(args.input) + ([args.image_dir] if args.image_dir else [])
    if not inputs:
        raise ConfigError("nothing to do: give --input PATH (images, folders, globs, videos) or --image-dir")
    config = pipeline_config(args)
    dist = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: share the inputs out by rank
        from pyramidpose.training.distributed import init_distributed

        dist = init_distributed(args.device or "auto")
        config.device = str(dist.device)
        config.dist = dist
        config.progress = config.progress and dist.is_main
    try:
        pipeline = Pipeline(config)
        only = coco_file_names(args.images_from) if args.images_from else None
        report = pipeline.run(inputs, only_names=only)
    finally:
        if dist is not None:
            from pyramidpose.training.distributed import shutdown

            shutdown(dist)
    if dist is None or dist.is_main:
        for line in report.lines():
            print(line, file=sys.stderr if line.startswith(("skipped", "failed")) else sys.stdout)
        ranks = f"; {dist.world_size} ranks" if dist is not None else ""
        model = pipeline.backend.name
        if report.videos and pipeline.video_backend is not pipeline.backend:
            model = f"{model} on images, {pipeline.video_backend.name} on videos" if report.images else pipeline.video_backend.name
        print(f"{report.summary()} (model: {model}{ranks})")
    return report.exit_code()  # 0 done, 1 nothing processed or an output failed, 3 some inputs skipped
