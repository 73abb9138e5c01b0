"""``pyramidpose eval``: COCO keypoint AP/AR of a results file, identical to pycocotools.

Starts fast (numpy and the standard library only; torch is never imported on this path). With
``--weights W --images DIR`` it first predicts (``pyramidpose predict`` on the annotation file's images,
with its person boxes unless ``--boxes`` is given) into ``--pred``, then evaluates: under
``torchrun --nproc_per_node N`` the prediction is sharded across the ranks and rank 0 evaluates the merged
file.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import TYPE_CHECKING

from pyramidpose.commands._args import ArgumentParser

if TYPE_CHECKING:
    import numpy as np


def _build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pyramidpose eval",
        description=(
            "COCO keypoint evaluation (OKS AP/AR, maxDets=20) of a results file against COCO-format "
            "annotations. The ten stats are identical to pycocotools' COCOeval(..., 'keypoints')."
        ),
    )
    p.add_argument("--gt", required=True, metavar="ANNOTATIONS.json", help="COCO keypoint annotation file")
    p.add_argument(
        "--pred",
        required=True,
        metavar="RESULTS.json",
        help="COCO results: a JSON list of {image_id, category_id, keypoints: [x, y, score]*K, score}; "
        "with --weights, where the predictions are written first",
    )
    p.add_argument("--weights", help="evaluate a checkpoint: predict with it into --pred first (needs --images)")
    p.add_argument("--images", metavar="DIR", help="with --weights: the folder of the annotation file's images")
    p.add_argument(
        "--boxes",
        metavar="FILE",
        help="with --weights: person boxes (a COCO detection-results file); default: the --gt person boxes",
    )
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="with --weights: as in predict")
    p.add_argument(
        "--sigmas",
        metavar="FILE|NAME",
        help="per-keypoint OKS sigmas for non-COCO layouts: a file (JSON list or whitespace-separated "
        "numbers) or a keypoint set name such as crowdpose; default: COCO's 17 sigmas",
    )
    p.add_argument(
        "--no-area",
        action="store_true",
        help="CrowdPose-style: scale OKS and area ranges by bbox w*h*0.53 instead of the 'area' field",
    )
    p.add_argument("--out", metavar="stats.json", help="also write the ten stats as JSON (written atomically)")
    return p


def _resolve_sigmas(arg: str) -> np.ndarray:
    """A sigmas file, or the name of a keypoint set of :mod:`pyramidpose.skeletons` with sigmas."""
    from pathlib import Path

    from pyramidpose.evaluation.coco_eval import load_sigmas

    if Path(arg).exists():
        return load_sigmas(arg)
    from pyramidpose.errors import DataError
    from pyramidpose.skeletons import get_keypoint_set

    try:
        kset = get_keypoint_set(arg)
    except KeyError as exc:
        raise DataError(f"--sigmas {arg}: no such file, and {exc.args[0]}") from None
    if kset.sigmas is None:
        raise DataError(f"--sigmas {arg}: keypoint set '{kset.name}' has no OKS sigmas; give a file")
    if kset.name == "coco":
        from pyramidpose.evaluation.coco_eval import default_sigmas

        return default_sigmas()  # bit-identical to pycocotools' constants
    return kset.sigmas_array()


def main(argv: list[str] | None = None) -> int:
    """Run ``pyramidpose eval``; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if (args.images or args.boxes or args.precision) and not args.weights:
        parser.error("--images, --boxes and --precision go with --weights (evaluating a checkpoint)")
    if args.weights and not args.images:
        parser.error("--weights needs --images DIR (the annotation file's images)")
    if args.out:
        from pyramidpose.utils.outputs import check_output_file

        check_output_file(args.out)  # before the evaluation, not after it
    if args.weights:
        code = _predict(args)
        if code not in (0, 3) or not _is_rank_zero():
            return code  # a failed prediction, or a rank > 0 whose share rank 0 has merged
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval, format_stats
    from pyramidpose.utils.io import write_json_atomic

    sigmas = _resolve_sigmas(args.sigmas) if args.sigmas else None
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = coco_keypoint_eval(args.gt, args.pred, sigmas=sigmas, use_area=not args.no_area)
    for w in caught:
        print(f"pyramidpose eval: warning: {w.message}", file=sys.stderr)
    print(format_stats(stats))
    print(f"(evaluated in {time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    if args.out:
        write_json_atomic(args.out, stats, indent=2)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    """``pyramidpose predict`` of ``--weights`` on the annotation file's images into ``--pred``
    (sharded under torchrun, merged by rank 0). Returns predict's exit code."""
    from pyramidpose.commands import predict

    pargs = [
        "--weights", args.weights, "--input", args.images, "--images-from", args.gt,
        "--boxes", args.boxes or args.gt, "--out", args.pred, "--no-progress",
    ]  # fmt: skip
    if args.precision:
        pargs += ["--precision", args.precision]
    return predict.main(pargs)


def _is_rank_zero() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
