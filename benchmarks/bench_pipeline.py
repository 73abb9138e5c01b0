"""Benchmark: frames per second of the full video pipeline at 640x480, beside MediaPipe's own solution.

The clip is made only from real footage: the bundled 5-frame street clip (real people walking) is
cropped to 4:3 (its right part, where the nearest walkers are), resized to 640x480 and played
forwards and backwards until it has ``--frames`` frames, then encoded as H.264 MP4. On that file,
in the same process:

* ``default``, listed first: exactly what ``pyramidpose predict --input clip.mp4`` runs without
  options (its configuration comes from the command's own parser, ``commands.predict.pipeline_config``;
  only the progress bar is off); ``--max-people N ...`` adds rows of it with a person cap.
* ``pyramidpose`` pipeline per ``--models`` preset and ``--detect-every`` cadence: decode (PyAV) ->
  person detector (NanoDet, every N-th frame; in between each person's box follows from their
  previous keypoints) -> pose of everyone (MoveNet, all crops of a frame in one batch) -> tracking
  -> One-Euro smoothing -> JSON-lines + annotated H.264 MP4, i.e. exactly what
  ``pyramidpose predict --input clip.mp4 --model M --detect-every N`` does (model loading excluded).
  ``bottomup`` (MultiPose) has no detector, so no cadence.
* MediaPipe's ``mediapipe.solutions.pose.Pose`` (video mode, model_complexity=1), on the same
  decoded frames: its ``process()`` only (no decode, no drawing, no file output, one person), so
  this reference is flattered, not handicapped. Skipped with a note when mediapipe is absent.

What a setting costs: each run's poses are scored (COCO keypoint AP, OKS) against the poses of
``--reference`` (default ``accurate``) detecting every frame, taken as pseudo ground truth
(instances scoring >= 0.3 with >= 5 keypoints above 0.3); the reference poses every detection
(``min_video_box_score`` 0); ``--ungated`` adds a row of the default doing the same. Prints fps, people per frame, AP vs that
reference and the speed ratio to MediaPipe; each time is the best of ``--repeat`` runs; the
machine (CPU, onnxruntime and OpenCV versions, threads, load average before and after) is printed
(it may be shared).

    python benchmarks/bench_pipeline.py [--frames 40] [--repeat 2] [--models default accurate fast bottomup]
        [--detect-every 1 5] [--max-people 1 2] [--threads N] [--ungated] [--gate-rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
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


def default_config(clip: Path, out_dir: Path):
    """The pipeline configuration of ``pyramidpose predict --input CLIP --out OUT --no-progress``:
    exactly what a user gets without options (the progress bar only is off)."""
    from pyramidpose.commands.predict import build_parser, pipeline_config

    return pipeline_config(build_parser().parse_args(["--input", str(clip), "--out", str(out_dir), "--no-progress"]))


def bench_pyramidpose(
    clip: Path, out_dir: Path, model: str, detect_every: int | None, repeat: int, threads: int | None,
    max_people: int | None = None, ungated: bool = False,
):  # fmt: skip
    """(fps, people per frame, JSONL records, pipeline) of the pipeline on the clip; ``model``
    ``default``: :func:`default_config`, else that preset with ``detect_every``; ``ungated``: pose
    every detection (a MoveNet video session's ``min_video_box_score`` set to 0)."""
    from pyramidpose.inference.pipeline import Pipeline, PipelineConfig, RunReport

    if model == "default":
        cfg = default_config(clip, out_dir)
    else:
        cfg = PipelineConfig(out_dir=out_dir, weights=model, detect_every=detect_every, progress=False)
    if threads is not None:
        cfg.num_threads = threads
    cfg.max_people = max_people
    pipe = Pipeline(cfg)
    if ungated and hasattr(pipe.video_backend, "min_video_box_score"):
        pipe.video_backend.min_video_box_score = 0.0
    pipe.detector  # noqa: B018  (load the detector before timing)
    best = float("inf")
    for _ in range(repeat):
        report = RunReport()
        t0 = time.perf_counter()
        res = pipe.run_video(clip, report)
        best = min(best, time.perf_counter() - t0)
    recs = [r for r in map(json.loads, res.jsonl.read_text().splitlines()) if "instances" in r]  # no header
    people = float(np.mean([len(r["instances"]) for r in recs]))
    return res.frames / best, people, recs, pipe


def gate_ab(clip: Path, out_dir: Path, rounds: int) -> None:
    """The default pipeline with and without its detection score gate (MoveNet's
    ``min_video_box_score``: 0.35 vs 0), timed in alternating rounds (load drift hits both alike),
    with the crops each posed; prints per-round fps and the ratios."""
    from pyramidpose.inference.pipeline import Pipeline, RunReport

    runs = {}
    for gate in (None, 0.0):
        pipe = Pipeline(default_config(clip, out_dir / f"gate{gate}"))
        pipe.detector  # noqa: B018  (load the detector before timing)
        vb = pipe.video_backend
        if gate is not None:
            vb.min_video_box_score = gate
        crops = [0]

        def counted(image, boxes, scores=None, predict=vb.predict, crops=crops):
            crops[0] += len(boxes)
            return predict(image, boxes, scores)

        vb.predict = counted  # an instance attribute: only this pipeline's backend counts
        runs[f"{'default' if gate is None else 'ungated'}, min_video_box_score {getattr(vb, 'min_video_box_score', '-')}"] = (pipe, crops, [])
    for _ in range(rounds):
        for pipe, crops, fps in runs.values():
            crops[0] = 0
            t0 = time.perf_counter()
            res = pipe.run_video(clip, RunReport())
            fps.append(res.frames / (time.perf_counter() - t0))
    (a, (_, ca, fa)), (b, (_, cb, fb)) = runs.items()
    print(f"gate A/B, {rounds} alternating rounds: {a}: {ca[0]} crops, fps {np.round(fa, 2).tolist()}; "
          f"{b}: {cb[0]} crops, fps {np.round(fb, 2).tolist()}")  # fmt: skip
    ratios = np.asarray(fa) / np.asarray(fb)
    print(f"fps ratio per round {np.round(ratios, 2).tolist()}; median {np.median(ratios):.2f}; "
          f"crops ratio {ca[0] / max(cb[0], 1):.3f}")  # fmt: skip


def pseudo_gt(recs: list[dict]) -> dict:
    """COCO keypoint annotations from a run's confident poses."""
    images, anns = [], []
    for r in recs:
        images.append({"id": r["frame"]})
        for inst in r["instances"]:
            s = np.asarray(inst["keypoint_scores"])
            if inst["score"] < 0.3 or (s >= 0.3).sum() < 5:
                continue
            kp = np.asarray(inst["keypoints"])
            vis = np.where(s >= 0.3, 2, 0)
            x, y, w, h = inst["bbox"]
            anns.append({
                "id": len(anns) + 1, "image_id": r["frame"], "category_id": 1, "iscrowd": 0,
                "bbox": [x, y, w, h], "area": float(w * h), "num_keypoints": int((vis > 0).sum()),
                "keypoints": np.concatenate([kp, vis[:, None]], 1).ravel().tolist(),
            })  # fmt: skip
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


def ap_against(gt: dict, recs: list[dict]) -> float:
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval

    results = [
        {
            "image_id": r["frame"],
            "category_id": 1,
            "score": inst["score"],
            "keypoints": np.concatenate(
                [np.asarray(inst["keypoints"]), np.asarray(inst["keypoint_scores"])[:, None]], 1
            )
            .ravel()
            .tolist(),
        }  # fmt: skip
        for r in recs
        for inst in r["instances"]
    ]
    return coco_keypoint_eval(gt, results)["AP"] if results else 0.0


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


def describe(pipe) -> str:
    """What a pipeline runs on video, in words."""
    c = pipe.config
    vb = pipe.video_backend
    if not vb.needs_boxes:
        return f"{vb.name} (no detector), x264 {c.mp4_preset}"
    return f"{vb.name} on {pipe.detector.name} boxes every {c.detect_every} frames, x264 {c.mp4_preset}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument(
        "--models",
        nargs="+",
        default=["default", "accurate", "fast", "bottomup"],
        choices=["default", "accurate", "fast", "bottomup"],
        help="default = what 'pyramidpose predict --input clip.mp4' runs without options",
    )
    ap.add_argument("--detect-every", type=int, nargs="+", default=[1, 5], help="cadences of the named presets")
    ap.add_argument("--reference", default="accurate", choices=["accurate", "fast"],
                    help="AP reference: this preset detecting every frame")  # fmt: skip
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: the pipeline's)")
    ap.add_argument("--max-people", type=int, nargs="*", default=[],
                    help="also run the default pipeline with --max-people N, per N")  # fmt: skip
    ap.add_argument("--ungated", action="store_true",
                    help="also run the default posing every detection (min_video_box_score 0)")  # fmt: skip
    ap.add_argument("--gate-rounds", type=int, default=0,
                    help="also time the default with and without its detection score gate, alternating, N rounds")  # fmt: skip
    args = ap.parse_args()
    import cv2
    import onnxruntime

    print(
        f"{os.cpu_count()} logical CPUs; onnxruntime {onnxruntime.__version__}, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads); load average before: {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "street_640x480.mp4"
        frames = make_clip(clip, args.frames)
        rows = []
        try:
            fps_mp, people_mp = bench_mediapipe(frames, args.repeat)
            rows.append(
                ("mediapipe.solutions.pose (process() only, 1 person max)", fps_mp, people_mp, float("nan"))
            )
        except ImportError:
            fps_mp = float("nan")
            print("mediapipe not installed: no reference (pip install mediapipe==0.10.14 for the benchmark)")
        runs = [("default", None, None)] if "default" in args.models else []
        runs += [("default", None, n) for n in args.max_people]
        runs += [("default-ungated", None, None)] if args.ungated else []
        for model in args.models:
            if model != "default":
                runs += [(model, e, None) for e in (args.detect_every if model != "bottomup" else [1])]
        ref = ("reference", 1, None)  # its own key: a run of the same preset is not gated off
        results = {ref: bench_pyramidpose(clip, tmp / "ref", args.reference, 1, args.repeat, args.threads, ungated=True)}
        gt = pseudo_gt(results[ref][2])
        default_desc, threads = None, None
        for model, every, most in runs:
            if (model, every, most) not in results:
                ungated = model == "default-ungated"
                results[model, every, most] = bench_pyramidpose(
                    clip, tmp / f"{model}{every}{most}", "default" if ungated else model, every, args.repeat,
                    args.threads, most, ungated,
                )
            fps, people, recs, pipe = results[model, every, most]
            threads = pipe.config.num_threads
            if model.startswith("default"):
                default_desc = default_desc or describe(pipe)
                label = "pyramidpose default (predict --input clip.mp4)"
                label += f" --max-people {most}" if most else ""
                label = "default, every detection posed (ungated)" if model == "default-ungated" else label
            else:
                label = f"pyramidpose {model}" + (f", detect every {every}" if model != "bottomup" else " (no detector)")
            rows.append((label, fps, people, ap_against(gt, recs)))
        if args.gate_rounds:
            gate_ab(clip, tmp, args.gate_rounds)
    print(f"{args.frames} frames of 640x480 H.264 (real street clip, ping-pong), best of {args.repeat}; "
          f"AP vs {args.reference} detecting every frame; onnxruntime threads {threads}")  # fmt: skip
    if default_desc:
        print(f"default video pipeline: {default_desc}")
    print(f"{'method':58s} {'fps':>7s} {'people/frame':>13s} {'AP vs ref':>10s} {'vs mediapipe':>13s}")
    for name, fps, people, apv in rows:
        print(f"{name:58s} {fps:7.2f} {people:13.2f} {apv:10.3f} {fps / fps_mp:12.2f}x")
    print(f"load average after: {os.getloadavg()}")
    from pyramidpose.utils.device import machine_summary  # imports torch: only after the timings

    print(f"machine: {machine_summary()}")


if __name__ == "__main__":
    main()
