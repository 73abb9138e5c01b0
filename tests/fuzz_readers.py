"""Fuzzing harness for every reader of an untrusted file (issue 18).

Each reader gets seed files in its real format (written here), and hypothesis feeds it mutations of
them (byte flips, inserted/deleted/duplicated ranges, truncation, interesting integers over header
fields; for JSON also replaced subtrees; for text formats replaced tokens and lines) plus arbitrary
bytes. The only exceptions allowed out of a reader are the project's own
(:class:`pyramidpose.errors.PyramidPoseError`); anything else is a failure.

Run one reader in a fresh process under an address-space limit (1 GiB above what its imports use)::

    python -m tests.fuzz_readers READER EXAMPLES [SEED]

prints one JSON line ``{"reader", "examples", "accepted", "refused", "seconds"}`` and exits 0, or
prints the failing input and traceback and exits 1. ``READER`` ``limit-canary`` only checks that the
limit stops a 1.5 GiB allocation.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
LIMIT_BYTES = 1 << 30


# -- mutations ----------------------------------------------------------------------------------------

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**63 - 1, 2**64 - 1, 10**9]


@st.composite
def mutated_bytes(draw, seeds: list[bytes]) -> bytes:
    """A seed with 1-4 random edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate", "int", "byte"]))
        n = len(data)
        pos = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and n:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete" and n:
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "dup" and n:
            chunk = data[pos : pos + draw(st.integers(1, 256))]
            data[pos:pos] = chunk * draw(st.integers(1, 8))
        elif op == "truncate":
            del data[pos:]
        elif op == "int" and n:
            width = draw(st.sampled_from([1, 2, 4, 8]))
            value = draw(st.sampled_from(INTERESTING)) % (1 << (8 * width))
            data[pos : pos + width] = value.to_bytes(width, draw(st.sampled_from(["little", "big"])))
    return bytes(data)


WEIRD_NUMBERS = [0, -1, 1, 0.5, -0.0, 1e308, -1e308, 1e-320, 2**63, -(2**63) - 1, 10**30, float("nan"),
                 float("inf"), float("-inf"), 3, 17, 100000]  # fmt: skip
json_scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(WEIRD_NUMBERS), st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
)  # fmt: skip
json_values = st.recursive(
    json_scalars, lambda c: st.one_of(st.lists(c, max_size=5), st.dictionaries(st.text(max_size=10), c, max_size=5)),
    max_leaves=12,
)  # fmt: skip


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated_json(draw, seeds: list) -> bytes:
    """A JSON seed with 1-3 subtrees replaced (NaN, huge numbers, wrong types), sometimes deeply
    nested or cut short."""
    doc = json.loads(json.dumps(draw(st.sampled_from(seeds))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        value = draw(json_values)
        if not path:
            doc = value
            continue
        node = doc
        for key in path[:-1]:
            node = node[key]
        if draw(st.booleans()) or not isinstance(node, (dict, list)):
            node[path[-1]] = value
        elif isinstance(node, dict):
            node.pop(path[-1], None)
        else:
            del node[path[-1]]
    text = json.dumps(doc)
    kind = draw(st.sampled_from(["plain"] * 6 + ["deep", "cut"]))
    if kind == "deep":
        n = draw(st.sampled_from([1000, 100_000]))
        text = text[:-1] + ", " + "[" * n + "]" * draw(st.sampled_from([0, n])) + text[-1:] if len(text) > 1 else "[" * n
    elif kind == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


TOKENS = ["0", "-1", "1e308", "-1e308", "nan", "inf", "1e-320", "999999999999", "abc", "", "(", ")", ":",
          "begin", "end", "limits", "dof", "rx", "ry", "rz", "tx", "l", "root", "XYZ", "-", "#"]  # fmt: skip


@st.composite
def mutated_text(draw, seeds: list[bytes]) -> bytes:
    """A text seed with 1-4 line/token edits (tokens from the formats' own vocabulary)."""
    lines = draw(st.sampled_from(seeds)).decode("utf-8", "replace").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["token", "token", "delete", "dup", "insert", "truncate"]))
        if op == "token":
            toks = lines[i].split(" ")
            j = draw(st.integers(0, len(toks) - 1))
            toks[j] = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)))
            lines[i] = " ".join(toks)
        elif op == "delete":
            del lines[i]
        elif op == "dup":
            lines[i:i] = [lines[i]] * draw(st.integers(1, 5))
        elif op == "insert":
            lines.insert(i, " ".join(draw(st.lists(st.sampled_from(TOKENS), max_size=6))))
        else:
            del lines[i:]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def any_input(seeds: list[bytes], structured: Callable | None = None) -> st.SearchStrategy[bytes]:
    options = [mutated_bytes(seeds), st.binary(max_size=256)]
    if structured is not None:
        options = [structured, structured, *options]
    return st.one_of(*options)


# -- seeds and readers ------------------------------------------------------------------------------


@dataclass
class Reader:
    """``seeds(dir)`` -> strategy of file contents; ``read(path)`` calls the project's reader."""

    name: str
    suffix: str
    strategy: Callable[[Path], st.SearchStrategy[bytes]]
    read: Callable[[Path, Path], object]


def _image_seeds(d: Path):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    seeds = []
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 80}), ("GIF", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {})):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        seeds.append(buf.getvalue())
    buf = io.BytesIO()
    img.convert("LA").save(buf, "PNG")
    seeds.append(buf.getvalue())
    return any_input(seeds)


def _read_image(path: Path, d: Path):
    from pyramidpose.data.images import read_image

    return read_image(path)


def _video_seeds(d: Path):
    import av

    seeds = [(REPO / "pyramidpose" / "assets" / "samples" / "street_5frames.mp4").read_bytes()[:200_000]]
    for codec, ext in (("mpeg4", "mp4"), ("mjpeg", "avi")):
        buf = io.BytesIO()
        with av.open(buf, "w", format=ext if ext != "mp4" else "mp4") as c:
            s = c.add_stream(codec, rate=10)
            s.width, s.height, s.pix_fmt = 32, 24, "yuv420p" if codec == "mpeg4" else "yuvj420p"
            for i in range(4):
                frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
                for p in s.encode(frame):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        seeds.append(buf.getvalue())
    return any_input(seeds)


def _read_video(path: Path, d: Path):
    from pyramidpose.data.video import iter_frames, probe_video

    probe_video(path)
    for _ in iter_frames(path, max_frames=8):
        pass


def _coco_gt() -> dict:
    return json.loads((DATA / "coco" / "person_keypoints_mini.json").read_text())


def _coco_results() -> list:
    gt = _coco_gt()
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 0.9}
            for a in gt["annotations"][:6]]  # fmt: skip


def _json_strategy(docs: list):
    return any_input([json.dumps(x).encode() for x in docs], mutated_json(docs))


def _read_coco_annotations(path: Path, d: Path):
    from pyramidpose.data.coco import load_gt_instances
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval
    from pyramidpose.inference.pipeline import coco_file_names
    from pyramidpose.skeletons import COCO

    coco_file_names(path)
    load_gt_instances(path, d, COCO)
    coco_keypoint_eval(path, _coco_results())


def _read_coco_results(path: Path, d: Path):
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval

    gt = d / "gt.json"
    if not gt.exists():
        gt.write_text(json.dumps(_coco_gt()))
    coco_keypoint_eval(gt, path)


def _box_docs() -> list:
    gt = _coco_gt()
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.5} for a in gt["annotations"][:5]]
    return [dets, {"annotations": dets}]


def _read_boxes(path: Path, d: Path):
    from pyramidpose.data.boxes import load_box_file
    from pyramidpose.data.coco import load_detection_instances

    gt = d / "gt.json"
    if not gt.exists():
        gt.write_text(json.dumps(_coco_gt()))
    kind = load_box_file(path).kind
    for kwargs in ({"det_thr": 0.3, "images": gt}, {"mmpose_gt": kind == "annotations"}):
        boxes = load_box_file(path, **kwargs)
        for key in (*boxes.image_ids(), 229358, "x"):
            boxes.get(key)
        boxes.image_id_for("000000229358.jpg")
    load_detection_instances(path, gt, d)


def _jsonl_seeds(d: Path):
    rng = np.random.default_rng(0)
    lines = []
    for f in range(4):
        inst = [{"track_id": t, "bbox": [1, 2, 30, 40], "keypoints": rng.uniform(0, 100, (17, 2)).round(1).tolist(),
                 "keypoint_scores": [0.9] * 17, "score": 0.9} for t in (1, 2)]  # fmt: skip
        lines.append({"frame": f, "time": f / 30, "instances": inst})
    whole = "\n".join(json.dumps(x) for x in lines).encode()

    @st.composite
    def records(draw):
        out = [json.dumps(x).encode() for x in lines]
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(mutated_json([lines[i]]))
        return b"\n".join(out)

    return any_input([whole], records())


def _read_jsonl(path: Path, d: Path):
    import torch

    from pyramidpose.lifting.tracks import lift_tracks, read_tracks
    from pyramidpose.models.lifting import LifterConfig, build_lifter

    tracks, _ = read_tracks(path)
    model = build_lifter(LifterConfig(kind="mlp", hidden=8, num_blocks=1)).eval()
    with torch.no_grad():
        lift_tracks(model, tracks)


def _npy_seeds(d: Path):
    seeds = []
    for arr in (np.zeros((5, 17, 3), np.float32), np.asfortranarray(np.ones((3, 17, 2))), np.arange(6, dtype="<i8")):
        buf = io.BytesIO()
        np.save(buf, arr)
        seeds.append(buf.getvalue())
    pos = {"S1": {"Walk": np.zeros((2, 32, 3), np.float32)}}
    for maker in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        maker(buf, positions_3d=np.array(pos, dtype=object), positions_2d=np.array({"S1": {"W": [np.zeros((2, 17, 2))]}}, dtype=object),
              metadata=np.array({"num_joints": 17}, dtype=object))  # fmt: skip
        seeds.append(buf.getvalue())
    return any_input(seeds)


def _read_npy(path: Path, d: Path):
    from pyramidpose.data.pose3d_formats import load_h36m_2d, load_h36m_3d
    from pyramidpose.errors import DataError
    from pyramidpose.utils.npyio import load_npy, load_npz, read_npy_header

    if path.read_bytes()[:2] == b"PK":
        load_npz(path, allow_objects=True)
        try:
            load_h36m_3d(path)
        finally:
            load_h36m_2d(path)
    else:
        read_npy_header(path)
        try:
            load_npy(path)
        except DataError:
            pass
        load_npy(path, allow_objects=True)


def _3dpw_seeds(d: Path):
    n = 3
    seq = {"sequence": "s", "genders": ["m"], "jointPositions": [np.zeros((n, 72))], "poses2d": [np.zeros((n, 3, 18))],
           "img_frame_ids": np.arange(n), "cam_poses": np.tile(np.eye(4), (n, 1, 1)), "cam_intrinsics": np.eye(3),
           "campose_valid": [np.ones(n)]}  # fmt: skip
    return any_input([pickle.dumps(seq, protocol=p) for p in (2, 4)])


def _read_3dpw(path: Path, d: Path):
    from pyramidpose.data.pose3d_formats import load_3dpw_sequence

    s = load_3dpw_sequence(path)
    for a in range(len(s.joints3d)):
        s.joints3d_camera(a)
        s.coco17_2d(a)


def _yaml_seeds(d: Path):
    seeds = [p.read_bytes() for p in sorted((REPO / "configs").glob("*.yaml"))]
    return any_input(seeds, mutated_text(seeds))


def _read_yaml(path: Path, d: Path):
    from pyramidpose.errors import PyramidPoseError
    from pyramidpose.forecasting.train import load_experiment_config
    from pyramidpose.lifting.experiment import LiftExperimentConfig
    from pyramidpose.training.config import load_config, load_yaml_config

    first = None
    for load in (load_config, lambda p: load_yaml_config(p, LiftExperimentConfig), load_experiment_config):
        try:
            load(path)
        except PyramidPoseError as e:
            first = first or e
    if first is not None:
        raise first


def _checkpoint_seeds(d: Path):
    import torch
    from safetensors.torch import save

    from pyramidpose.models.checkpoints import CONFIG_METADATA_KEY
    from pyramidpose.models.pose_model import ModelConfig

    sd = {"backbone.pos_embed": torch.zeros(1, 3, 4), "head.final.weight": torch.zeros(17, 4, 1, 1)}
    seeds = [save(sd), save(sd, metadata={CONFIG_METADATA_KEY: json.dumps(ModelConfig().to_dict()), "format": "pyramidpose"})]
    for obj in ({"state_dict": sd, "meta": {"epoch": 1}}, {"model": sd}):
        buf = io.BytesIO()
        torch.save(obj, buf)
        seeds.append(buf.getvalue())
    buf = io.BytesIO()
    torch.save(sd, buf, _use_new_zipfile_serialization=False)
    seeds.append(buf.getvalue())
    return any_input(seeds)


def _read_checkpoint(path: Path, d: Path):
    from pyramidpose.models.checkpoints import read_checkpoint

    head = path.read_bytes()[:9]
    target = path.with_suffix(".safetensors" if head[8:9] == b"{" else ".pth")
    os.replace(path, target)
    read_checkpoint(target)


def _pickle_seeds(d: Path):
    objs = [{"a": [1, 2.5, "x", None, True], "b": (np.zeros(3), np.int64(4))}, [np.arange(4).reshape(2, 2)] * 2,
            {"nested": {"k": np.float32(1.5), "s": b"bytes", "u": "text"}}]  # fmt: skip
    return any_input([pickle.dumps(o, protocol=p) for o in objs for p in (2, 3, 5)])


def _read_pickle(path: Path, d: Path):
    from pyramidpose.errors import CheckpointError, DataError
    from pyramidpose.models.checkpoints import read_checkpoint
    from pyramidpose.utils.npyio import PICKLE_ERRORS, restricted_loads

    data = path.read_bytes()
    target = path.with_suffix(".pth")
    os.replace(path, target)
    try:  # a legacy (non-zip) torch checkpoint is a raw pickle too; these are no checkpoints
        read_checkpoint(target)
    except CheckpointError:
        pass
    try:
        restricted_loads(data)
    except PICKLE_ERRORS as e:  # what restricted_loads's callers turn into a DataError
        raise DataError(f"refused: {e}") from None


def _mocap_seeds(d: Path):
    asf = (DATA / "mocap" / "01.asf").read_bytes()
    amc = b"\n".join((DATA / "mocap" / "01_01_first60.amc").read_bytes().splitlines()[:3 + 3 * 30])
    return any_input([asf, amc], mutated_text([asf, amc]))


def _read_mocap(path: Path, d: Path):
    from pyramidpose.data.mocap import load_cmu_sequence, parse_amc, parse_asf

    text = path.read_bytes()
    if b":root" in text or b":bonedata" in text or b":version" in text:
        target = path.with_suffix(".asf")
        os.replace(path, target)
        parse_asf(target)
        load_cmu_sequence(target, DATA / "mocap" / "01_01_first60.amc", fps=30.0)
    else:
        target = path.with_suffix(".amc")
        os.replace(path, target)
        parse_amc(target)
        load_cmu_sequence(DATA / "mocap" / "01.asf", target, fps=30.0)


READERS: dict[str, Reader] = {
    r.name: r
    for r in (
        Reader("images", ".img", _image_seeds, _read_image),
        Reader("videos", ".mp4", _video_seeds, _read_video),
        Reader("coco_annotations", ".json", lambda d: _json_strategy([_coco_gt()]), _read_coco_annotations),
        Reader("coco_results", ".json", lambda d: _json_strategy([_coco_results()]), _read_coco_results),
        Reader("boxes", ".json", lambda d: _json_strategy(_box_docs()), _read_boxes),
        Reader("json_lines", ".jsonl", _jsonl_seeds, _read_jsonl),
        Reader("npy_npz", ".npy", _npy_seeds, _read_npy),
        Reader("3dpw_pickles", ".pkl", _3dpw_seeds, _read_3dpw),
        Reader("yaml", ".yaml", _yaml_seeds, _read_yaml),
        Reader("checkpoints", ".ckpt", _checkpoint_seeds, _read_checkpoint),
        Reader("raw_pickles", ".pkl", _pickle_seeds, _read_pickle),
        Reader("asf_amc", ".txt", _mocap_seeds, _read_mocap),
    )
}


class Failure(AssertionError):
    """An input made a reader raise something other than the project's own errors."""


def fuzz(name: str, examples: int, seed: int = 0) -> dict:
    """Feed ``examples`` generated inputs to reader ``name``; returns counts, raises :class:`Failure`."""
    from pyramidpose.errors import PyramidPoseError

    reader = READERS[name]
    counts = {"reader": name, "examples": 0, "accepted": 0, "refused": 0}
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        d = Path(tmp)
        strategy = reader.strategy(d)

        @hypothesis_seed(seed)
        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(data=strategy)
        def run(data: bytes) -> None:
            work = d / f"case{counts['examples']}"
            work.mkdir()
            path = work / f"input{reader.suffix}"
            path.write_bytes(data)
            counts["examples"] += 1
            try:
                reader.read(path, work)
                counts["accepted"] += 1
            except PyramidPoseError:
                counts["refused"] += 1
            except BaseException as e:
                raise Failure(f"{name}: {type(e).__name__}: {e}\ninput ({len(data)} bytes): {data[:300]!r}") from e
            finally:
                for p in work.iterdir():
                    p.unlink()
                work.rmdir()

        run()
    return counts


def limit_address_space(extra: int = LIMIT_BYTES) -> int:
    """Cap this process's address space at its current size + ``extra``; returns the cap."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    cap = vm + extra
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return cap


def _import_everything() -> None:
    """Import what the readers use before the limit is set (imports are not the inputs' doing)."""
    import av  # noqa: F401
    import torch

    import pyramidpose.data.boxes  # noqa: F401
    import pyramidpose.data.coco  # noqa: F401
    import pyramidpose.data.images  # noqa: F401
    import pyramidpose.data.mocap  # noqa: F401
    import pyramidpose.data.pose3d_formats  # noqa: F401
    import pyramidpose.data.video  # noqa: F401
    import pyramidpose.evaluation.coco_eval  # noqa: F401
    import pyramidpose.forecasting.train  # noqa: F401
    import pyramidpose.inference.pipeline  # noqa: F401
    import pyramidpose.lifting.experiment  # noqa: F401
    import pyramidpose.lifting.tracks  # noqa: F401
    import pyramidpose.models.checkpoints  # noqa: F401
    import pyramidpose.training.config  # noqa: F401

    torch.set_num_threads(1)
    torch.zeros(4) @ torch.zeros(4)  # start torch's thread pool before the limit


def main(argv: list[str]) -> int:
    name, examples = argv[0], int(argv[1]) if len(argv) > 1 else 0
    seed = int(argv[2]) if len(argv) > 2 else 0
    if name == "limit-canary":
        cap = limit_address_space()
        try:
            block = bytearray(LIMIT_BYTES + (LIMIT_BYTES >> 1))
        except MemoryError:
            print(json.dumps({"reader": name, "limited": True, "cap": cap}))
            return 0
        print(json.dumps({"reader": name, "limited": False, "got": len(block)}))
        return 1
    _import_everything()
    limit_address_space()
    t0 = time.perf_counter()
    try:
        counts = fuzz(name, examples, seed)
    except Failure as e:
        print(f"FAILED {e}", file=sys.stderr)
        import traceback

        traceback.print_exception(e.__cause__ or e, file=sys.stderr)
        return 1
    counts["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
