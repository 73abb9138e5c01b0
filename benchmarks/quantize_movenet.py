"""Benchmark: MoveNet quantised to int8 (onnxruntime static QDQ, per-channel) vs the shipped model.

Measures the two things that decide whether an int8 MoveNet is worth shipping, in one process:

* speed: onnxruntime milliseconds per crop, fp32 (the shipped model; its float16 weights run as
  float32) vs int8, batch 1 and batch 6, one intra-op thread, rounds interleaved (median and best);
* accuracy: COCO keypoint AP on coco-mini val with ground-truth boxes (the boxes and crops of
  ``pyramidpose predict --model fast --boxes ANNOTATIONS``), fp32 vs int8.

The int8 model is built from the shipped one: its float16 weights are turned back into float32
initializers (they are exact), then ``onnxruntime.quantization.quantize_static`` (QDQ, uint8
activations, int8 per-channel weights, MinMax calibration) calibrated on real person crops that are
not evaluation data: NanoDet's boxes (score >= 0.3) on the 5 frames of the bundled street clip, and
their mirror images (the bundled sample photos are coco-mini val images, so they are not used).
The four output heads stay float (``--quantize-heads`` quantises them too).

    python benchmarks/quantize_movenet.py [--variant lightning] [--rounds 8] [--out int8.onnx]

Measured here (docs/embedded_models.md, "Video speed"): not shipped; int8 Lightning is about
1.2-1.3x faster per crop but loses about 0.03 AP.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "pyramidpose" / "assets" / "samples" / "street_5frames.mp4"
COCO = REPO.parent / "shared" / "data" / "coco-mini"
OUTPUTS = ["heatmaps", "centres", "regress", "offsets"]
HEADS = ("center_0/", "kpt_heatmap_0/", "kpt_offset_0/", "kpt_regress_0/")


def float32_graph(path: Path):
    """The shipped model with its float16 initializers (each behind a Cast) back as float32 ones."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes, new = [], []
    for n in g.node:
        if n.op_type == "Cast" and n.input[0] in inits and n.input[0].endswith("__fp16"):
            new.append(numpy_helper.from_array(numpy_helper.to_array(inits[n.input[0]]).astype(np.float32), n.output[0]))
        else:
            nodes.append(n)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept + new)
    del g.node[:]
    g.node.extend(nodes)
    return model


def calibration_crops(backend) -> np.ndarray:
    """Crops of NanoDet's person boxes on the bundled street clip, and their mirror images."""
    from pyramidpose.data.video import iter_frames
    from pyramidpose.inference.backends import load_detector

    det = load_detector("nanodet")
    crops = []
    for _, _, frame in iter_frames(CLIP):
        b, _ = det.detect(frame)
        centres = b[:, :2] + b[:, 2:] / 2
        sides = np.maximum(b[:, 2], b[:, 3]) * backend.crop_scale
        crops.append(backend._crops(frame, centres, sides, b))
    crops = np.concatenate(crops)
    return np.concatenate([crops, crops[:, :, ::-1]])


def quantize(backend, src: Path, out: Path, quantize_heads: bool) -> int:
    """Write the int8 model of ``src`` to ``out``; returns the number of calibration crops."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    crops = calibration_crops(backend)
    name = backend.session.get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([crops[i : i + 8].astype(np.int32) for i in range(0, len(crops), 8)])

        def get_next(self):
            x = next(self.batches, None)
            return None if x is None else {name: x}

    with tempfile.TemporaryDirectory() as tmp:
        fp32, pre = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx"
        onnx.save(float32_graph(src), str(fp32))
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        nodes = list(onnx.load(str(pre)).graph.node)
        exclude = [] if quantize_heads else [n.name for n in nodes if any(h in n.name for h in HEADS)]
        quantize_static(
            str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
        )  # fmt: skip
    return len(crops)


def ms_per_crop(sessions: dict, size: int, rounds: int) -> dict:
    """{name: {batch: [ms per crop per round]}}, rounds interleaved across the sessions."""
    import cv2

    from pyramidpose.data.video import iter_frames

    frame = next(iter(iter_frames(CLIP)))[2]
    x1 = cv2.resize(frame[:, : frame.shape[0]], (size, size))[None].astype(np.int32)
    inputs = {1: x1, 6: np.repeat(x1, 6, 0)}
    times = {k: {1: [], 6: []} for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            name = s.get_inputs()[0].name
            for b, x in inputs.items():
                n = 12 if b == 1 else 3
                t = time.perf_counter()
                for _ in range(n):
                    s.run(OUTPUTS, {name: x})
                times[k][b].append((time.perf_counter() - t) / n / b * 1000)
    return times


def coco_val_ap(backend) -> float:
    """COCO keypoint AP on coco-mini val with ground-truth boxes (as ``predict --boxes``)."""
    import cv2

    from pyramidpose.data.boxes import load_box_file
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval

    ann = COCO / "annotations" / "person_keypoints_val2017.json"
    boxes = load_box_file(ann)
    results = []
    for image_id in boxes.image_ids():
        image = cv2.cvtColor(cv2.imread(str(COCO / "val2017" / boxes.images[image_id]["file_name"])), cv2.COLOR_BGR2RGB)
        b, s = boxes.get(image_id)
        results += backend.predict(image, b, s).to_coco(image_id)
    return coco_keypoint_eval(ann, results)["AP"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="lightning", choices=["lightning", "thunder"])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--quantize-heads", action="store_true", help="quantise the four output heads too")
    ap.add_argument("--out", type=Path, default=None, help="keep the int8 model there")
    args = ap.parse_args()
    import onnxruntime as ort

    from pyramidpose.inference.backends.movenet import VARIANTS, MoveNetBackend
    from pyramidpose.inference.backends.onnx_models import embedded_model_path, onnx_session

    print(f"{os.cpu_count()} logical CPUs; onnxruntime {ort.__version__}; load average before: {os.getloadavg()}")
    model, size = VARIANTS[args.variant]
    src = embedded_model_path(model)
    fp32 = MoveNetBackend(args.variant, num_threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "int8.onnx"
        n = quantize(fp32, src, out, args.quantize_heads)
        print(f"int8 model: {out.stat().st_size / 1e6:.2f} MB (shipped float16: {src.stat().st_size / 1e6:.2f} MB), "
              f"calibrated on {n} street-clip crops")  # fmt: skip
        int8 = MoveNetBackend(args.variant, num_threads=1)
        int8.session = onnx_session(out, 1)
        times = ms_per_crop({"fp32": fp32.session, "int8": int8.session}, size, args.rounds)
        for k, t in times.items():
            print(f"{k}: ms per crop, batch 1: median {np.median(t[1]):.2f} best {min(t[1]):.2f}; "
                  f"batch 6: median {np.median(t[6]):.2f} best {min(t[6]):.2f}")  # fmt: skip
        print(f"int8 speed-up (best): batch 1 {min(times['fp32'][1]) / min(times['int8'][1]):.2f}x, "
              f"batch 6 {min(times['fp32'][6]) / min(times['int8'][6]):.2f}x")  # fmt: skip
        if (COCO / "val2017").is_dir():
            a32, a8 = coco_val_ap(fp32), coco_val_ap(int8)
            print(f"coco-mini val AP with ground-truth boxes: fp32 {a32:.3f}, int8 {a8:.3f} ({a8 - a32:+.3f})")
        else:
            print(f"no coco-mini at {COCO}: AP not measured")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
