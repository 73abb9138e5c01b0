"""Person-box AP of the embedded detectors on coco-mini (pycocotools bbox evaluation).

Runs each detector on every image listed in ``instances_<split>2017.json`` and evaluates its boxes
against the person boxes there (category 1, COCO bbox AP/AR); prints one row per detector with the
wall-clock time. ``nanodet`` runs at ``--score-threshold`` (the pipeline uses 0.3; AP is measured
lower, where recall is not cut). Optionally writes the detections as COCO results files, which
``pyramidpose predict --boxes FILE`` accepts.

    python benchmarks/eval_detectors.py [--detectors nanodet blazepose hog] [--split val|train] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COCO_MINI = REPO.parent / "shared" / "data" / "coco-mini"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detectors", nargs="+", default=["nanodet"], choices=["nanodet", "blazepose", "hog"])
    ap.add_argument("--split", default="val", choices=["val", "train"])
    ap.add_argument("--score-threshold", type=float, default=0.05, help="nanodet score threshold")
    ap.add_argument("--tiles", type=int, nargs="*", default=[], help="nanodet extra tile grids, e.g. 2")
    ap.add_argument("--stretch", action="store_true", help="nanodet: stretch to 416x416 instead of letterboxing")
    ap.add_argument("--coco", type=Path, default=COCO_MINI, help="coco-mini folder")
    ap.add_argument("--out-dir", type=Path, default=None, help="also write <detector>_dets.json here")
    args = ap.parse_args()

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from pyramidpose.data.images import read_image
    from pyramidpose.inference.backends import load_detector
    from pyramidpose.utils.io import write_json_atomic

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(args.coco / "annotations" / f"instances_{args.split}2017.json"))
    ids = sorted(gt.getImgIds())
    n_people = len(gt.getAnnIds(imgIds=ids, catIds=[1], iscrowd=False))
    print(f"coco-mini {args.split}: {len(ids)} images, {n_people} person boxes (non-crowd)")
    print(f"{'detector':12s} {'AP':>6s} {'AP50':>6s} {'AP75':>6s} {'AR@100':>7s} {'boxes':>6s} {'seconds':>8s}")
    for name in args.detectors:
        kw = {}
        if name == "nanodet":
            kw = dict(score_threshold=args.score_threshold, tiles=tuple(args.tiles), letterbox=not args.stretch)
        det = load_detector(name, **kw)
        rows = []
        t0 = time.perf_counter()
        for img_id in ids:
            info = gt.loadImgs(img_id)[0]
            boxes, scores = det.detect(read_image(args.coco / f"{args.split}2017" / info["file_name"]))
            rows += [
                {"image_id": img_id, "category_id": 1, "bbox": [round(float(v), 2) for v in b], "score": float(s)}
                for b, s in zip(boxes, scores)
            ]
        dt = time.perf_counter() - t0
        if args.out_dir:
            write_json_atomic(args.out_dir / f"{name}_dets.json", rows)
        stats = np.zeros(12)
        if rows:
            with contextlib.redirect_stdout(io.StringIO()):
                ev = COCOeval(gt, gt.loadRes(rows), "bbox")
                ev.params.catIds = [1]
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            stats = ev.stats
        print(f"{name:12s} {stats[0]:6.3f} {stats[1]:6.3f} {stats[2]:6.3f} {stats[8]:7.3f} {len(rows):6d} {dt:8.1f}")


if __name__ == "__main__":
    main()
