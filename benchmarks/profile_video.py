"""Where the video pipeline's time goes: per-stage wall-clock timers around ``Pipeline.run_video``.

On the clip of ``bench_pipeline.py`` (the real street clip at 640x480, ``--frames`` frames), the
pipeline ``pyramidpose predict --input clip.mp4`` runs without options (``--model default``) or
with a preset, once to warm up and once timed. The stage functions are wrapped with timers (the
pipeline code is not changed): decoding, NanoDet, crops, MoveNet (onnxruntime + numpy decoding),
tracking, smoothing, JSON records, drawing, H.264 encoding. Times are wall-clock milliseconds per
frame; stages that run in the reader/writer threads (decode, records, drawing, encoding) overlap
the models, so the stages may add up to more than the total.

    python benchmarks/profile_video.py [--model default|accurate|fast] [--frames 40] [--max-people N]
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

TIMES: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter = collections.Counter()


def timed(owner: object, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper adding its wall time to ``TIMES[label]``."""
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - t0
            CALLS[label] += 1

    setattr(owner, name, wrapper)


def timed_iter(owner: object, name: str, label: str) -> None:
    """Like :func:`timed` for a generator function: the time of each ``next``."""
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        it = fn(*args, **kwargs)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                TIMES[label] += time.perf_counter() - t0
            CALLS[label] += 1
            yield item

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", choices=["default", "accurate", "fast", "bottomup"])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--max-people", type=int, default=None)
    args = ap.parse_args()

    import bench_pipeline as bp

    import pyramidpose.data.video as video
    import pyramidpose.inference.backends.base as base
    import pyramidpose.inference.backends.movenet as movenet
    import pyramidpose.inference.backends.nanodet as nanodet
    import pyramidpose.inference.pipeline as pipeline
    import pyramidpose.inference.smoothing as smoothing
    import pyramidpose.inference.tracking as tracking

    timed_iter(pipeline, "iter_frames", "decode (PyAV, to RGB)")
    timed(base.DetectAndFollow, "step", "video session step (detect + pose + filter)")
    timed(nanodet.NanoDetDetector, "detect", "  NanoDet (detection frames)")
    timed(movenet.MoveNetBackend, "_crops", "  crops (affine warp + blanking)")
    timed(movenet.MoveNetBackend, "_run", "  MoveNet (onnxruntime + decode)")
    timed(movenet, "decode_singlepose", "    of which numpy decode")
    timed(tracking.PoseTracker, "update", "tracking")
    timed(smoothing.TrackSmoother, "__call__", "smoothing")
    timed(pipeline, "frame_record", "JSON record")
    timed(pipeline, "draw_frame", "drawing")
    timed(video.VideoWriter, "write", "H.264 encode (write)")
    timed(video.VideoWriter, "__exit__", "H.264 flush + close")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "street_640x480.mp4"
        bp.make_clip(clip, args.frames)
        if args.model == "default":
            cfg = bp.default_config(clip, tmp / "out")
        else:
            cfg = pipeline.PipelineConfig(out_dir=tmp / "out", weights=args.model, progress=False)
        cfg.max_people = args.max_people
        pipe = pipeline.Pipeline(cfg)
        pipe.detector  # noqa: B018  (models load before timing)
        pipe.run_video(clip, pipeline.RunReport())  # warm-up
        TIMES.clear()
        CALLS.clear()
        t0 = time.perf_counter()
        res = pipe.run_video(clip, pipeline.RunReport())
        total = time.perf_counter() - t0
        recs = [json.loads(line) for line in res.jsonl.read_text().splitlines()[1:]]
    people = np.mean([len(r["instances"]) for r in recs])
    print(f"{args.model} ({bp.describe(pipe)}): {res.frames} frames in {total:.2f} s = {res.frames / total:.2f} fps, "
          f"{1000 * total / res.frames:.1f} ms/frame, {people:.2f} people/frame")  # fmt: skip
    for label, seconds in TIMES.items():
        print(f"  {label:46s} {1000 * seconds / res.frames:7.1f} ms/frame  ({CALLS[label]} calls)")


if __name__ == "__main__":
    main()
