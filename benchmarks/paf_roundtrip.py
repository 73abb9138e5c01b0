"""PAF round trip on coco-mini: ground truth encoded into heatmaps + part affinity fields at the model's
output stride, decoded and grouped, scored with COCO keypoint AP (whole splits and per image for the
most crowded images). It checks the grouping and the resolution, with no network involved.

    python benchmarks/paf_roundtrip.py [--data ../shared/data/coco-mini] [--longer-side 512] [--stride 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from pyramidpose.codecs.paf import roundtrip_results
from pyramidpose.evaluation.coco_eval import coco_keypoint_eval


def one_image(coco: dict, image_id: int) -> dict:
    """The COCO dict restricted to one image."""
    return {
        **coco,
        "images": [im for im in coco["images"] if im["id"] == image_id],
        "annotations": [a for a in coco["annotations"] if a["image_id"] == image_id],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco-mini"
    )
    ap.add_argument("--longer-side", type=int, default=512, help="input pixels of the image's longer side")
    ap.add_argument("--stride", type=int, default=4, help="input pixels per output pixel")
    ap.add_argument("--crowded", type=int, default=5, help="per-image AP of this many most crowded images")
    args = ap.parse_args(argv)
    for split in ("val", "train"):
        path = args.data / "annotations" / f"person_keypoints_{split}2017.json"
        if not path.is_file():
            print(f"error: {path} not found; pass --data DIR (a COCO keypoint set)", file=sys.stderr)
            return 2
        coco = json.loads(path.read_text())
        t0 = time.perf_counter()
        res = roundtrip_results(coco, args.longer_side, stride=args.stride)
        dt = time.perf_counter() - t0
        stats = coco_keypoint_eval(coco, res)
        labelled = Counter(
            a["image_id"]
            for a in coco["annotations"]
            if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0
        )
        print(
            f"{split}: AP {stats['AP']:.3f} AP50 {stats['AP50']:.3f} AP75 {stats['AP75']:.3f} AR {stats['AR']:.3f} "
            f"({sum(labelled.values())} labelled persons, {len(labelled)} images, {dt:.2f} s encode+decode)"
        )
        for iid, n in labelled.most_common(args.crowded):
            sub = one_image(coco, iid)
            s = coco_keypoint_eval(sub, [r for r in res if r["image_id"] == iid])
            print(f"  image {iid}: {n} persons, AP {s['AP']:.3f}, AR {s['AR']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
