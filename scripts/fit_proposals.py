"""Fit the part-guided proposal model (pyramidpose.data.proposals) from a detector's boxes.

Runs the embedded person detector on the images of a COCO keypoint file, matches its boxes to the
ground-truth persons (IoU >= 0.5) and writes the per-part-group Gaussians of the box offsets as JSON.

    python scripts/fit_proposals.py [--ann ../shared/data/coco-mini/annotations/person_keypoints_train2017.json]
        [--images ../shared/data/coco-mini/train2017] [--detector blazepose] [--out configs/proposals_coco_mini.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pyramidpose.data.images import read_image
from pyramidpose.data.proposals import collect_offsets, fit_proposals
from pyramidpose.errors import DataError
from pyramidpose.inference.backends import load_detector

ROOT = Path(__file__).resolve().parents[2] / "shared/data/coco-mini"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann", type=Path, default=ROOT / "annotations/person_keypoints_train2017.json")
    ap.add_argument("--images", type=Path, default=ROOT / "train2017")
    ap.add_argument("--detector", default="blazepose", help="embedded detector name (blazepose, hog)")
    ap.add_argument("--out", type=Path, default=Path("configs/proposals_coco_mini.json"))
    args = ap.parse_args(argv)
    try:
        coco = json.loads(args.ann.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {args.ann}: {exc}", file=sys.stderr)
        return 2
    anns: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0:
            anns.setdefault(a["image_id"], []).append(a)
    detector = load_detector(args.detector).detect

    def people() -> Iterator[tuple[np.ndarray, list, list]]:
        for im in tqdm(coco["images"], desc="detect", file=sys.stderr):
            if im["id"] not in anns:
                continue
            try:
                image = read_image(args.images / im["file_name"])
            except DataError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                continue
            group = anns[im["id"]]
            yield (
                image,
                [a["bbox"] for a in group],
                [np.asarray(a["keypoints"], float).reshape(-1, 3) for a in group],
            )

    samples = collect_offsets(people(), detector)
    n_gt = sum(len(v) for v in anns.values())
    model = fit_proposals(
        samples, source=f"{args.detector} boxes on {args.ann.name}: {len(samples)} of {n_gt} persons matched"
    )
    model.save(args.out)
    for g in model.mean:
        m = np.round(model.mean[g], 3).tolist()
        sd = np.round(np.sqrt(np.diag(model.cov[g])), 3).tolist()
        print(f"{g}: {model.count[g]} boxes, mean dx dy log-dw log-dh {m}, sd {sd}")
    print(f"{model.source}; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
