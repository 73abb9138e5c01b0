"""``pyramidpose demo``: the whole pipeline on the bundled samples with the embedded default model.

Runs person detection (NanoDet) and keypoints, the embedded default presets (ONNX files inside the
package, run by onnxruntime, no download: ``accurate``, MoveNet Thunder, on photos; ``fast``, MoveNet
Lightning, on video frames), tracking and smoothing on three bundled COCO photos and a 5-frame
street clip, and writes everything under
``./demo_out/`` (or ``--out``): ``results.json`` (COCO keypoint results), one ``*_pose.jpg``
overlay per photo, ``street_5frames.jsonl`` and the annotated ``street_5frames.mp4``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pyramidpose.commands._args import ArgumentParser

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"


def sample_inputs() -> list[Path]:
    """The bundled sample images and video."""
    files = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".png", ".mp4"))
    return files


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="pyramidpose demo",
        description="Run detection, pose, tracking and drawing on the bundled sample photos and video "
        "with the embedded default model (offline), and list the files written.",
    )
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: ./demo_out)")
    p.add_argument("--no-video", action="store_true", help="only the sample photos")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pyramidpose.utils.outputs import check_output_dir

    check_output_dir(args.out)
    from pyramidpose.inference.pipeline import Pipeline, PipelineConfig

    inputs = sample_inputs()
    if args.no_video:
        inputs = [p for p in inputs if p.suffix.lower() != ".mp4"]
    t0 = time.perf_counter()
    pipe = Pipeline(PipelineConfig(out_dir=args.out, draw=True, progress=not args.quiet))
    report = pipe.run([str(p) for p in inputs])
    dt = time.perf_counter() - t0
    print(f"pyramidpose demo: {report.summary()} in {dt:.1f} s (models: {pipe.backend.name} on photos, {pipe.video_backend.name} on video, embedded defaults)")
    for line in report.lines():
        print("  " + line)
    for v in report.videos:
        print(f"  video {v.source.name}: {v.frames} frames, {v.tracks} tracks -> {v.jsonl.name}, {v.mp4.name}")
    return report.exit_code()
