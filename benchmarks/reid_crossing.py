"""Identity switches of the pose tracker with and without the appearance term, on clips with known
identities built from real coco-mini people crossing and occluding each other over a real background.

Each clip: people cut out of coco-mini train images by their segmentation polygons (large, mostly
labelled, non-crowd), scaled to one height, walking across a coco-mini val image without people in
opposite directions so they cross; the one behind is hidden where the one in front covers it. The
poses given to the tracker are the people's labelled keypoints moved with them, with 2 px noise;
keypoints under the front person get a low score and a person more than 60 % hidden is not detected
at all (a short occlusion). The appearance embedding is taken from the rendered frame. Switches are
counted by :func:`pyramidpose.inference.reid.clip_id_switches`.

    python benchmarks/reid_crossing.py [--data ../shared/data/coco-mini] [--clips 8] [--frames 40]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from pyramidpose.data.images import read_image
from pyramidpose.inference.reid import appearance_embedding, clip_id_switches
from pyramidpose.inference.tracking import PoseTracker

FRAME = (360, 640)  # H, W
HEIGHT = 220  # person height in the clip


def load_people(data: Path, limit: int = 12) -> list[dict]:
    """Sprites (RGB crop, mask, keypoints in crop pixels) of large, well-labelled coco-mini people."""
    coco = json.loads((data / "annotations/person_keypoints_train2017.json").read_text())
    images = {im["id"]: im for im in coco["images"]}
    anns = [
        a for a in coco["annotations"]
        if not a.get("iscrowd") and a.get("num_keypoints", 0) >= 13 and isinstance(a.get("segmentation"), list)
        and a["bbox"][3] > 150 and a["bbox"][3] > 1.6 * a["bbox"][2]
    ]  # fmt: skip
    anns.sort(key=lambda a: -a["area"])
    people = []
    for a in anns[:limit]:
        img = read_image(data / "train2017" / images[a["image_id"]]["file_name"])
        mask = np.zeros(img.shape[:2], np.uint8)
        for poly in a["segmentation"]:
            cv2.fillPoly(mask, [np.round(np.asarray(poly).reshape(-1, 2)).astype(np.int32)], 1)
        x, y, w, h = (int(round(v)) for v in a["bbox"])
        s = HEIGHT / max(h, 1)
        size = (max(int(w * s), 1), HEIGHT)
        crop = cv2.resize(img[y : y + h, x : x + w], size, interpolation=cv2.INTER_AREA)
        m = cv2.resize(mask[y : y + h, x : x + w], size, interpolation=cv2.INTER_NEAREST)
        kp = np.asarray(a["keypoints"], np.float64).reshape(17, 3)
        kp[:, :2] = (kp[:, :2] - [x, y]) * s
        people.append({"image": crop, "mask": m, "keypoints": kp, "id": a["id"]})
    return people


def background(data: Path, index: int) -> np.ndarray:
    """A coco-mini val image with no person annotation, resized to the frame."""
    coco = json.loads((data / "annotations/person_keypoints_val2017.json").read_text())
    with_people = {a["image_id"] for a in coco["annotations"]}
    empty = sorted(im["file_name"] for im in coco["images"] if im["id"] not in with_people)
    img = read_image(data / "val2017" / empty[index % len(empty)])
    return cv2.resize(img, (FRAME[1], FRAME[0]), interpolation=cv2.INTER_AREA)


def make_clip(
    people: list[dict], bg: np.ndarray, frames: int, rng: np.random.Generator, y_offsets: list[int]
) -> list[tuple[np.ndarray, list[dict]]]:
    """Frames and per-frame detections ``{"gt", "keypoints", "scores", "bbox"}`` of people crossing."""
    n = len(people)
    starts = [40 + 80 * i if i % 2 == 0 else FRAME[1] - 140 - 80 * i for i in range(n)]
    ends = [FRAME[1] - 140 - 60 * i if i % 2 == 0 else 40 + 60 * i for i in range(n)]
    out = []
    for f in range(frames):
        t = f / (frames - 1)
        frame = bg.copy()
        owner = np.full(FRAME, -1, np.int64)
        placed = []
        for i, p in enumerate(people):  # later people are drawn in front
            x0 = int(round(starts[i] + (ends[i] - starts[i]) * t))
            y0 = FRAME[0] - HEIGHT - 10 - y_offsets[i]
            h, w = p["mask"].shape
            xa, xb = max(x0, 0), min(x0 + w, FRAME[1])
            if xb <= xa:
                placed.append(None)
                continue
            m = p["mask"][:, xa - x0 : xb - x0] > 0
            region = frame[y0 : y0 + h, xa:xb]
            region[m] = p["image"][:, xa - x0 : xb - x0][m]
            owner[y0 : y0 + h, xa:xb][m] = i
            placed.append((x0, y0))
        dets = []
        for i, p in enumerate(people):
            if placed[i] is None:
                continue
            kp = p["keypoints"].copy()
            kp[:, :2] += placed[i]
            lab = kp[:, 2] > 0
            xy = np.clip(np.round(kp[:, :2]).astype(int), 0, [FRAME[1] - 1, FRAME[0] - 1])
            seen = lab & (owner[xy[:, 1], xy[:, 0]] == i)
            if seen.sum() < 0.4 * lab.sum():
                continue  # mostly hidden: not detected in this frame
            pts = kp[:, :2] + rng.normal(0, 2.0, (17, 2))
            scores = np.where(seen, 0.9, np.where(lab, 0.1, 0.0))
            vis = pts[seen]
            x1, y1 = vis.min(0) - 10
            x2, y2 = vis.max(0) + 10
            dets.append(
                {"gt": i, "keypoints": pts, "scores": scores, "bbox": np.array([x1, y1, x2 - x1, y2 - y1])}
            )
        out.append((frame, dets))
    return out


def run_tracker(clip: list[tuple[np.ndarray, list[dict]]], appearance: bool) -> tuple[list, list]:
    tracker = PoseTracker(
        appearance_weight=0.5 if appearance else 0.0, min_appearance=0.8 if appearance else 0.0
    )
    gts, ids = [], []
    for frame, dets in clip:
        kp = np.array([d["keypoints"] for d in dets]).reshape(-1, 17, 2)
        sc = np.array([d["scores"] for d in dets]).reshape(-1, 17)
        bx = np.array([d["bbox"] for d in dets]).reshape(-1, 4)
        emb = None
        if appearance:
            pairs = [appearance_embedding(frame, d["keypoints"], d["scores"], d["bbox"]) for d in dets]
            emb = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        ids.append(tracker.update(kp, sc, bx, emb))
        gts.append(np.array([d["gt"] for d in dets], np.int64))
    return gts, ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco-mini"
    )
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, default=None, help="write the middle frame of clip 0 here (JPEG)")
    args = ap.parse_args(argv)
    if not (args.data / "annotations").is_dir():
        print(f"error: {args.data} has no annotations/; pass --data DIR (coco-mini)", file=sys.stderr)
        return 2
    people = load_people(args.data)
    rng = np.random.default_rng(args.seed)
    total = {False: 0, True: 0}
    for c in range(args.clips):
        n = 2 + c % 2  # two or three people
        pick = rng.choice(len(people), n, replace=False)
        clip = make_clip(
            [people[i] for i in pick], background(args.data, c), args.frames, rng, [0, 8, 16][:n]
        )
        if c == 0 and args.save is not None:
            cv2.imwrite(str(args.save), cv2.cvtColor(clip[len(clip) // 2][0], cv2.COLOR_RGB2BGR))
        row = []
        for appearance in (False, True):
            s = clip_id_switches(*run_tracker(clip, appearance))
            total[appearance] += s
            row.append(s)
        hidden = sum(n - len(d) for _, d in clip)
        print(
            f"clip {c}: {n} people, {hidden} person-frames undetected; switches without appearance {row[0]}, with {row[1]}"
        )
    print(f"total identity switches: without appearance {total[False]}, with {total[True]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
