"""COCO keypoint AP with ground-truth boxes: MediaPipe's own solution against our direct BlazePose.

Reference (the issue's baseline): ``mediapipe.solutions.pose`` (static images, model_complexity=1,
the same pose_landmark_full weights) on a square crop of each ground-truth person box (side =
1.25 x the longer box side, zero padding), landmarks mapped back to the image; a person it does not
find gets no prediction; instance score = mean visibility of the 17 COCO keypoints.

Ours: :class:`pyramidpose.inference.backends.BlazePoseBackend` with each preset, on the same boxes.

Both are evaluated with pycocotools on coco-mini ``val`` and ``train`` (the presets were chosen on
val; train is the held-out check). One process, same boxes, same images.

    python benchmarks/bench_blazepose_ap.py [--splits val train] [--presets accurate fast multiscale]
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


def _persons(gt, img_id):
    return [a for a in gt.loadAnns(gt.getAnnIds(imgIds=img_id, iscrowd=False)) if a["category_id"] == 1]


def mediapipe_baseline(gt, split: str) -> tuple[list[dict], int]:
    import cv2
    import mediapipe as mp

    from pyramidpose.data.images import read_image
    from pyramidpose.inference.backends.blazepose import BLAZEPOSE_TO_COCO

    rows, found = [], 0
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for img_id in gt.getImgIds():
            anns = _persons(gt, img_id)
            if not anns:
                continue
            image = read_image(COCO_MINI / f"{split}2017" / gt.loadImgs(img_id)[0]["file_name"])
            for a in anns:
                x, y, w, h = a["bbox"]
                side = max(w, h) * 1.25
                x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
                n = max(16, int(round(side)))
                m = np.array([[side / n, 0, x0], [0, side / n, y0]])
                crop = cv2.warpAffine(image, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
                res = pose.process(np.ascontiguousarray(crop))
                if res.pose_landmarks is None:
                    continue
                found += 1
                lm = np.array([[p.x, p.y, p.visibility] for p in res.pose_landmarks.landmark])[BLAZEPOSE_TO_COCO]
                kx, ky = x0 + lm[:, 0] * side, y0 + lm[:, 1] * side
                kps = np.stack([kx, ky, lm[:, 2]], 1)
                rows.append({"image_id": img_id, "category_id": 1, "keypoints": kps.ravel().tolist(),
                             "score": float(lm[:, 2].mean())})  # fmt: skip
    return rows, found


def ours(gt, split: str, preset: str) -> list[dict]:
    from pyramidpose.data.images import read_image
    from pyramidpose.inference.backends.blazepose import BlazePoseBackend

    backend = BlazePoseBackend(preset)
    rows = []
    for img_id in gt.getImgIds():
        anns = _persons(gt, img_id)
        if not anns:
            continue
        image = read_image(COCO_MINI / f"{split}2017" / gt.loadImgs(img_id)[0]["file_name"])
        rows += backend.predict(image, np.array([a["bbox"] for a in anns])).to_coco(img_id)
    return rows


def coco_ap(gt, rows) -> float:
    from pycocotools.cocoeval import COCOeval

    if not rows:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(rows), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", nargs="+", default=["val", "train"], choices=["val", "train"])
    ap.add_argument("--presets", nargs="+", default=["accurate", "fast", "multiscale"])
    args = ap.parse_args()
    from pycocotools.coco import COCO

    print(f"{'split':6s} {'method':52s} {'AP':>6s} {'found':>10s} {'seconds':>8s}")
    for split in args.splits:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(COCO_MINI / "annotations" / f"person_keypoints_{split}2017.json"))
        labelled = len([a for a in gt.loadAnns(gt.getAnnIds(iscrowd=False)) if a["num_keypoints"] > 0])
        t0 = time.perf_counter()
        rows, found = mediapipe_baseline(gt, split)
        n_boxes = sum(len(_persons(gt, i)) for i in gt.getImgIds())
        print(f"{split:6s} {'mediapipe.solutions.pose on GT-box crops (x1.25)':52s} {coco_ap(gt, rows):6.3f} "
              f"{found:4d}/{n_boxes:<5d} {time.perf_counter() - t0:8.1f}")  # fmt: skip
        for preset in args.presets:
            t0 = time.perf_counter()
            rows = ours(gt, split, preset)
            print(f"{split:6s} {'pyramidpose BlazePose, preset ' + preset:52s} {coco_ap(gt, rows):6.3f} "
                  f"{len(rows):4d}/{n_boxes:<5d} {time.perf_counter() - t0:8.1f}")  # fmt: skip
        print(f"{split:6s} ({labelled} people with labelled keypoints)")


if __name__ == "__main__":
    main()
