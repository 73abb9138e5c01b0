"""Heatmap super-resolution vs interpolation vs low-resolution DARK, on coco-mini val ground truth.

The val people's keypoints (ground-truth boxes, the predictor's 1.25 padding, UDP geometry as
ViTPose) are encoded as heatmaps at a low stride (16 by default; sigma 2 heatmap pixels) and decoded
back to image pixels by

* ``DARK @ stride s``: DARK-UDP on the low-resolution maps themselves;
* ``bilinear + DARK``: bilinear (align_corners, the UDP grid) upsampling to stride 4, then DARK-UDP;
* ``SR + argmax`` / ``SR + DARK``: the SRCNN-style network of ``pyramidpose.models.heatmap_sr``,
  trained here on coco-mini *train* ground truth (``--train-steps``), then a plain arg-max or
  DARK-UDP at stride 4.

For each: mean / 90th-percentile keypoint error in image pixels over labelled keypoints, and the
COCO OKS AP of the decoded keypoints (all scores 1) against the val annotations.

    python benchmarks/heatmap_sr.py --strides 16 8 --train-steps 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pyramidpose.codecs.heatmap import HeatmapCodec, get_heatmap_maximum
from pyramidpose.data.coco import load_gt_instances
from pyramidpose.evaluation.coco_eval import coco_keypoint_eval
from pyramidpose.models.heatmap_sr import upsample_heatmaps
from pyramidpose.skeletons import get_keypoint_set
from pyramidpose.training.heatmap_sr import HeatmapSRTrainConfig, crop_keypoints, encode_at, train_heatmap_sr

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco-mini"


def _results(instances, kps: np.ndarray) -> list[dict]:
    return [
        {"image_id": inst.image_id, "category_id": 1, "score": 1.0,
         "keypoints": np.concatenate([k, np.ones((len(k), 1))], 1).reshape(-1).tolist()}
        for inst, k in zip(instances, kps)
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT, help="coco-mini root (annotations/, *2017/)")
    ap.add_argument("--strides", type=int, nargs="+", default=[16], choices=[8, 16])
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: small convs run best on one thread)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ks = get_keypoint_set("coco")
    val_ann = args.data / "annotations" / "person_keypoints_val2017.json"
    train, _ = load_gt_instances(args.data / "annotations" / "person_keypoints_train2017.json",
                                 args.data / "train2017", ks)  # fmt: skip
    val, _ = load_gt_instances(val_ann, args.data / "val2017", ks)
    input_size = (256, 192)
    kp, vis, centers, scales = crop_keypoints(val, input_size, udp=True)
    gt_img = np.stack([np.asarray(i.keypoints, np.float64) for i in val])
    labelled = gt_img[..., 2] > 0
    print(f"coco-mini: {len(train)} train / {len(val)} val people ({int(labelled.sum())} labelled val keypoints); "
          f"input {input_size[0]}x{input_size[1]}, UDP, sigma 2; SR trained {args.train_steps} steps, seed {args.seed}")  # fmt: skip
    print("| input stride | decoding | mean error (px) | p90 error (px) | OKS AP | decode ms/person |")
    print("|---:|---|---:|---:|---:|---:|")
    for stride in args.strides:
        _run_stride(stride, args, train, val, val_ann, kp, vis, centers, scales, gt_img, labelled, input_size)


def _run_stride(stride, args, train, val, val_ann, kp, vis, centers, scales, gt_img, labelled, input_size) -> None:  # noqa: ANN001, PLR0913
    high = (input_size[0] // 4, input_size[1] // 4)
    low, _ = encode_at(kp, vis, input_size, stride, udp=True, sigma=2.0)
    t0 = time.perf_counter()
    sr, _ = train_heatmap_sr(
        train,
        HeatmapSRTrainConfig(input_size=input_size, low_stride=stride, steps=args.train_steps,
                             batch_size=args.batch_size, seed=args.seed),
        log=lambda _: None,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    low_t = torch.from_numpy(low)
    kernel_low = 3 if stride == 16 else 5  # DARK blur scaled from 11 at stride 4

    def up_bilinear() -> np.ndarray:
        return upsample_heatmaps(low_t, high, udp=True, mode="bilinear").numpy()

    def up_sr() -> np.ndarray:
        with torch.no_grad():
            return torch.cat([sr(c) for c in low_t.split(256)]).numpy()

    dark_low = HeatmapCodec(input_size, heatmap_size=low.shape[-2:], udp=True, blur_kernel=kernel_low)
    dark = HeatmapCodec(input_size, udp=True)  # stride 4, DARK-UDP, blur 11 (ViTPose)
    methods = {
        f"DARK @ stride {stride}": (lambda: low, dark_low.decode),
        "bilinear + argmax": (up_bilinear, get_heatmap_maximum),
        "bilinear + DARK": (up_bilinear, dark.decode),
        "SR + argmax": (up_sr, get_heatmap_maximum),
        "SR + DARK": (up_sr, dark.decode),
    }
    for name, (make, dec) in methods.items():
        t0 = time.perf_counter()
        hm = make()
        coords, _ = dec(hm)
        ms = (time.perf_counter() - t0) * 1e3 / len(val)
        img = dark.to_image(coords, centers, scales, tuple(hm.shape[-2:]))
        err = np.linalg.norm(img - gt_img[..., :2], axis=-1)[labelled]
        ap_ = coco_keypoint_eval(str(val_ann), _results(val, img))["AP"]
        print(f"| {stride} | {name} | {err.mean():.3f} | {np.percentile(err, 90):.3f} | {ap_:.3f} | {ms:.2f} |")
    print(f"(SR for stride {stride}: {sum(p.numel() for p in sr.parameters())} parameters, trained in {train_s:.0f} s)")

if __name__ == "__main__":
    main()
