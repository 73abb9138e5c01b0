"""Synthetic people generator speed: images/s in one process, beside decoding a JPEG of the same size.

The reference is what a real dataset pays per image (OpenCV decoding a COCO JPEG of the repository's
test data), timed in the same process and interleaved with the generator, so the ratio survives a
busy machine. Uses the shared CMU mocap and coco-mini backgrounds when present (else the
repository's mocap excerpt and test images). Usage::

    python benchmarks/bench_synthetic.py [--size 320] [--rounds 5] [--images 40] [--split train]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=320, help="scene height and width in pixels")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=40, help="scenes per round")
    ap.add_argument("--split", default="train", choices=("train", "test"))
    args = ap.parse_args(argv)

    import cv2

    from pyramidpose.data.synthetic import BackgroundBank, MotionBank, SceneConfig, SyntheticPeople

    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    if (SHARED / "cmu-mocap").is_dir():
        motion = MotionBank.for_split(SHARED / "cmu-mocap", args.split)
        coco = "train2017" if args.split == "train" else "val2017"
        bg = BackgroundBank.from_coco(SHARED / "coco-mini" / "annotations" / f"person_keypoints_{coco}.json",
                                      SHARED / "coco-mini" / coco)  # fmt: skip
        source = "shared CMU mocap + coco-mini backgrounds"
    else:
        data = REPO / "tests" / "data"
        motion = MotionBank.from_files([("01", data / "mocap" / "01.asf", data / "mocap" / "01_01_first60.amc")])
        bg = BackgroundBank.from_coco(data / "coco" / "person_keypoints_mini.json", data / "coco" / "images")
        source = "repository excerpt (no ../shared)"
    load_s = time.perf_counter() - t0
    gen = SyntheticPeople(args.split, seed=0, motion=motion, backgrounds=bg,
                          config=SceneConfig(image_size=(args.size, args.size)))  # fmt: skip
    jpeg = str(REPO / "tests" / "data" / "coco" / "images" / "000000229358.jpg")
    for i in range(10):  # warm-up: background images decoded and kept
        gen[i]
    gen_rates, ref_rates, people = [], [], 0
    for r in range(args.rounds):
        t = time.perf_counter()
        for i in range(args.images):
            people += len(gen[1000 * (r + 1) + i].keypoints)
        gen_rates.append(args.images / (time.perf_counter() - t))
        t = time.perf_counter()
        for _ in range(args.images):
            img = cv2.imread(jpeg, cv2.IMREAD_COLOR)
            cv2.resize(img, (args.size, args.size), interpolation=cv2.INTER_AREA)
        ref_rates.append(args.images / (time.perf_counter() - t))
    g, ref = statistics.median(gen_rates), statistics.median(ref_rates)
    print(f"motion + backgrounds: {source}; motion bank {len(motion)} frames loaded in {load_s:.1f} s")
    print(f"synthetic {args.size}x{args.size}: {g:.1f} images/s (median of {args.rounds} rounds, one process, "
          f"{people / (args.rounds * args.images):.2f} people/image)")  # fmt: skip
    print(f"reference, decode+resize a 640x423 COCO JPEG: {ref:.1f} images/s")
    print(f"ratio generator / JPEG decode: {g / ref:.3f} (measured interleaved in this process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
