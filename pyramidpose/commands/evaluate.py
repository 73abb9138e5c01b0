"""``pyramidpose eval``: COCO keypoint AP/AR of a results file, identical to pycocotools.

Starts fast (numpy and the standard library only; torch is never imported on this path).
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
        help="COCO results: a JSON list of {image_id, category_id, keypoints: [x, y, score]*K, score}",
    )
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
    args = _build_parser().parse_args(argv)
    if args.out:
        from pyramidpose.utils.outputs import check_output_file

        check_output_file(args.out)  # before the evaluation, not after it
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
