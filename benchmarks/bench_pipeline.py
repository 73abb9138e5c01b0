"""Benchmark: frames per second of the full video pipeline at 640x480, beside MediaPipe's own solution.

The clip is made only from real footage: the bundled 5-frame street clip (real people walking) is
cropped to 4:3 (its right part, where the nearest walkers are), resized to 640x480 and played forwards and backwards until it has
``--frames`` frames, then encoded as H.264 MP4. On that file, in the same process:

* ``pyramidpose`` pipeline: decode (PyAV) -> embedded person detector -> BlazePose keypoints
  (``--video-preset``) -> tracking -> One-Euro smoothing -> JSON-lines + annotated H.264 MP4,
  i.e. exactly what ``pyramidpose predict --input clip.mp4`` does (model loading excluded);
  once detecting every frame and once with ``--detect-every 5`` (poses followed in between).
* MediaPipe's ``mediapipe.solutions.pose.Pose`` (video mode, model_complexity=1, the same
  pose_landmark_full weights), on the same decoded frames: its ``process()`` only (no decode,
  no drawing, no file output), so this reference is flattered, not handicapped.

Prints wall-clock fps, people per frame found by each, and the speed ratio. The machine is shared:
each measurement is the best of ``--repeat`` runs.

    python benchmarks/bench_pipeline.py [--frames 40] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "pyramidpose" / "assets" / "samples" / "street_5frames.mp4"


def make_clip(path: Path, frames: int, width: int = 640, height: int = 480) -> list[np.ndarray]:
    """The real clip, cropped to 4:3 (the right part, where the nearest people walk), resized and
    ping-ponged to ``frames`` frames; returns them."""
    import cv2

    from pyramidpose.data.video import VideoWriter, iter_frames

    src = [f for _, _, f in iter_frames(CLIP)]
    h, w = src[0].shape[:2]
    cw = int(round(h * width / height))
    x0 = w - cw
    small = [cv2.resize(f[:, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_AREA) for f in src]
    cycle = small + small[-2:0:-1]  # 0 1 2 3 4 3 2 1 | 0 1 ...
    out = [cycle[i % len(cycle)] for i in range(frames)]
    with VideoWriter(path, 5.0, width, height) as wr:
        for f in out:
            wr.write(f)
    return out


def bench_pyramidpose(clip: Path, out_dir: Path, detect_every: int, preset: str, repeat: int) -> tuple[float, float]:
    from pyramidpose.inference.pipeline import Pipeline, PipelineConfig, RunReport

    cfg = PipelineConfig(out_dir=out_dir, video_preset=preset, detect_every=detect_every, progress=False)
    pipe = Pipeline(cfg)
    pipe.detector  # noqa: B018  (load the detector before timing)
    best = float("inf")
    people = 0.0
    for _ in range(repeat):
        report = RunReport()
        t0 = time.perf_counter()
        res = pipe.run_video(clip, report)
        dt = time.perf_counter() - t0
        best = min(best, dt)
        recs = [json.loads(x) for x in res.jsonl.read_text().splitlines()]
        people = float(np.mean([len(r["instances"]) for r in recs]))
        n = res.frames
    return n / best, people


def bench_mediapipe(frames: list[np.ndarray], repeat: int) -> tuple[float, float]:
    import mediapipe as mp

    best = float("inf")
    found = 0
    for _ in range(repeat):
        with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
            found = 0
            t0 = time.perf_counter()
            for f in frames:
                r = pose.process(f)
                found += r.pose_landmarks is not None
            best = min(best, time.perf_counter() - t0)
    return len(frames) / best, found / len(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--video-preset", default="fast", choices=("fast", "accurate", "multiscale"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "street_640x480.mp4"
        frames = make_clip(clip, args.frames)
        rows = []
        fps_mp, people_mp = bench_mediapipe(frames, args.repeat)
        rows.append(("mediapipe.solutions.pose (process() only, 1 person max)", fps_mp, people_mp))
        for every in (1, 5):
            fps, people = bench_pyramidpose(clip, tmp / f"out{every}", every, args.video_preset, args.repeat)
            rows.append((f"pyramidpose pipeline, preset {args.video_preset}, detect every {every}", fps, people))
    print(f"{args.frames} frames of 640x480 H.264 (real street clip, ping-pong), best of {args.repeat}")
    print(f"{'method':62s} {'fps':>7s} {'people/frame':>13s} {'vs mediapipe':>13s}")
    for name, fps, people in rows:
        print(f"{name:62s} {fps:7.2f} {people:13.2f} {fps / fps_mp:12.2f}x")


if __name__ == "__main__":
    main()
