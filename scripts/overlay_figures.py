"""Overlay pictures for docs/images (issue 13): readable at 320 px, full size and 4K.

    python scripts/overlay_figures.py [--out docs/images] [--coco ../shared/data/coco-mini]

Writes small JPEGs: the most crowded coco-mini val image with its ground-truth keypoints drawn at
320 px, full size and 4K (the 4K one as a 100 % crop, to show the real pixel sizes), the bundled
sample photos with the embedded model's output, and a frame of the street clip with track colours.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from pyramidpose.data.images import read_image
from pyramidpose.viz.draw import DrawStyle, draw_poses, save_image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "pyramidpose" / "assets" / "samples"


def crowded_gt(coco: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Image, keypoints (N, 17, 2), visibility scores (N, 17) and boxes of the val image with the
    most labelled people."""
    gt = json.loads((coco / "annotations" / "person_keypoints_val2017.json").read_text())
    anns = [a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    image_id, _ = Counter(a["image_id"] for a in anns).most_common(1)[0]
    info = next(im for im in gt["images"] if im["id"] == image_id)
    mine = [a for a in anns if a["image_id"] == image_id]
    kps = np.array([a["keypoints"] for a in mine], np.float64).reshape(len(mine), 17, 3)
    boxes = np.array([a["bbox"] for a in mine], np.float64)
    image = read_image(coco / "val2017" / info["file_name"])
    return image, kps[..., :2], (kps[..., 2] > 0).astype(np.float64), boxes, info["file_name"]


def scaled(image: np.ndarray, kp: np.ndarray, boxes: np.ndarray, width: int):
    f = width / image.shape[1]
    size = (width, round(image.shape[0] * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp), kp * f, boxes * f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--coco", type=Path, default=ROOT.parent / "shared" / "data" / "coco-mini")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    style = DrawStyle(show_scores=False)

    image, kp, vis, boxes, name = crowded_gt(args.coco)
    ids = np.arange(len(kp))
    for width, tag in ((320, "320"), (image.shape[1], "full"), (3840, "4k")):
        img, k, b = scaled(image, kp, boxes, width)
        out = draw_poses(img, k, vis, "coco", bboxes=b, labels=[f"{i}" for i in ids], style=style)
        if tag == "4k":  # a 100 % crop of the 4K render: the real pixel sizes
            cx = int(np.median(k[..., 0][vis > 0]))
            x0 = int(np.clip(cx - 640, 0, out.shape[1] - 1280))
            out = out[out.shape[0] // 2 - 360 : out.shape[0] // 2 + 360, x0 : x0 + 1280]
        save_image(args.out / f"overlay_crowd_gt_{tag}.jpg", out, quality=82)
        print(f"{name}: {len(kp)} people, {tag}: {img.shape[1]}x{img.shape[0]}")

    from pyramidpose.inference.pipeline import Pipeline, PipelineConfig

    pipe = Pipeline(PipelineConfig(out_dir=Path("/tmp/overlay_figures"), progress=False,
                                   draw_style=DrawStyle(show_scores=True)))  # fmt: skip
    tiles = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        img = read_image(path)
        res = pipe.predict_image(img)
        from pyramidpose.inference.pipeline import draw_frame

        drawn = draw_frame(img, res, style=DrawStyle(show_scores=True))
        h = 360
        tiles.append(cv2.resize(drawn, (round(drawn.shape[1] * h / drawn.shape[0]), h), interpolation=cv2.INTER_AREA))
    save_image(args.out / "overlay_samples.jpg", np.concatenate(tiles, axis=1), quality=82)

    report = pipe.run([str(SAMPLES / "street_5frames.mp4")])
    from pyramidpose.data.video import iter_frames

    frames = [rgb for _, _, rgb in iter_frames(report.videos[0].mp4)]
    save_image(args.out / "overlay_street_tracks.jpg", frames[-1], quality=82)
    for p in sorted(args.out.glob("overlay_*.jpg")):
        print(f"{p}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
