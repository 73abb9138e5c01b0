"""Benchmark: ``pyramidpose eval`` against pycocotools on a 5000-image keypoint set, as whole processes.

The set is built by tiling the real coco-mini val annotations (../shared/data/coco-mini) until there
are 5000 images (fresh image and annotation ids per copy) and jittering each labelled person into
several detections, plus false positives; scores are rounded to 2 decimals so that ties occur.
Both evaluators run as separate Python processes on the same JSON files (startup and JSON loading
included; nothing is cached between runs except compiled bytecode, as for installed packages), after
one warm-up run each, alternately ``--repeat`` times; the benchmark prints the best wall-clock and CPU (user +
system) times of each, the speed ratios (of the best and of the median runs), every run's CPU time
and the largest difference over the ten stats. On a shared machine the CPU ratio is the steadier
figure.

    python benchmarks/bench_eval.py [--images 5000] [--dets-per-person 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GT_SOURCE = REPO.parent / "shared" / "data" / "coco-mini" / "annotations" / "person_keypoints_val2017.json"

PYCOCOTOOLS_SCRIPT = """
import contextlib, io, json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    ev = COCOeval(gt, dt, "keypoints")
    ev.evaluate(); ev.accumulate(); ev.summarize()
keys = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
with open(sys.argv[3], "w") as f:
    json.dump(dict(zip(keys, [float(s) for s in ev.stats])), f)
"""


def build_set(n_images: int, dets_per_person: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """Tile the coco-mini val annotations to ``n_images`` images and make jittered detections."""
    src = json.loads(GT_SOURCE.read_text())
    rng = np.random.default_rng(seed)
    anns_by_img: dict[int, list[dict]] = {}
    for a in src["annotations"]:
        anns_by_img.setdefault(a["image_id"], []).append(a)
    images, annotations, results = [], [], []
    next_ann = 1
    copy = 0
    while len(images) < n_images:
        for img in src["images"]:
            if len(images) >= n_images:
                break
            new_id = copy * 1_000_000 + img["id"]
            images.append({**img, "id": new_id})
            for a in anns_by_img.get(img["id"], []):
                annotations.append({**a, "id": next_ann, "image_id": new_id})
                next_ann += 1
                if a["num_keypoints"] == 0:
                    continue
                kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
                x, y, w, h = a["bbox"]
                scale = max(np.sqrt(a["area"]), 1.0)
                for _ in range(dets_per_person):
                    d = kp.copy()
                    lab = d[:, 2] > 0
                    d[~lab, 0] = x + rng.uniform(0, w, (~lab).sum())
                    d[~lab, 1] = y + rng.uniform(0, h, (~lab).sum())
                    d[:, :2] += rng.normal(0, scale * rng.uniform(0.01, 0.15), (len(d), 2))
                    d[:, 2] = rng.uniform(0.05, 1.0, len(d))
                    results.append(
                        {
                            "image_id": new_id,
                            "category_id": 1,
                            "keypoints": np.round(d, 2).ravel().tolist(),
                            "score": round(float(rng.uniform(0.05, 1.0)), 2),
                        }
                    )
            for _ in range(int(rng.integers(0, 4))):  # false positives anywhere in the image
                cx, cy = rng.uniform(0, img.get("width", 640)), rng.uniform(0, img.get("height", 480))
                d = np.zeros((17, 3))
                d[:, 0] = cx + rng.normal(0, 40, 17)
                d[:, 1] = cy + rng.normal(0, 80, 17)
                d[:, 2] = rng.uniform(0.05, 0.6, 17)
                results.append(
                    {
                        "image_id": new_id,
                        "category_id": 1,
                        "keypoints": np.round(d, 2).ravel().tolist(),
                        "score": round(float(rng.uniform(0.05, 0.6)), 2),
                    }
                )
        copy += 1
    gt = {**src, "images": images, "annotations": annotations}
    return gt, results


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, CPU seconds user+system of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _in_process(gt: dict, results: list[dict], repeat: int) -> tuple[float, float]:
    """CPU seconds of both evaluators on already loaded data (what a training loop pays per epoch)."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval

    t_ref, t_ours = [], []
    for _ in range(repeat):
        gt_copy, res_copy = copy.deepcopy(gt), copy.deepcopy(results)  # loadRes edits its input
        t0 = time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = gt_copy
            coco.createIndex()
            ev = COCOeval(coco, coco.loadRes(res_copy), "keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        t_ref.append(time.process_time() - t0)
        t0 = time.process_time()
        coco_keypoint_eval(gt, results)
        t_ours.append(time.process_time() - t0)
    return min(t_ref), min(t_ours)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets-per-person", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each evaluator; the best time is reported")
    ap.add_argument("--skip-in-process", action="store_true", help="only time the two processes")
    args = ap.parse_args()
    if not GT_SOURCE.is_file():
        sys.exit(f"needs the shared coco-mini annotations at {GT_SOURCE}")
    gt, results = build_set(args.images, args.dets_per_person)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        gt_path, res_path = tmp_p / "gt.json", tmp_p / "results.json"
        gt_path.write_text(json.dumps(gt))
        res_path.write_text(json.dumps(results))
        script = tmp_p / "pycocotools_eval.py"
        script.write_text(PYCOCOTOOLS_SCRIPT)
        ours_out, ref_out = tmp_p / "ours.json", tmp_p / "ref.json"
        n_persons = sum(1 for a in gt["annotations"] if a["num_keypoints"] > 0)
        print(
            f"set: {len(gt['images'])} images, {len(gt['annotations'])} annotations "
            f"({n_persons} with keypoints), {len(results)} detections"
        )
        ours_cmd = [sys.executable, "-m", "pyramidpose", "eval", "--gt", str(gt_path), "--pred", str(res_path)]
        ours_cmd += ["--out", str(ours_out)]
        ref_cmd = [sys.executable, str(script), str(gt_path), str(res_path), str(ref_out)]
        # Both processes run as an installed package would: with cached bytecode. pycocotools and numpy
        # come byte-compiled from their wheels; pyramidpose's modules are compiled by a warm-up run into
        # a private cache (PYTHONPYCACHEPREFIX), as a first import would, even where the calling
        # environment sets PYTHONDONTWRITEBYTECODE.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(tmp_p / "pycache")
        _run(ours_cmd, env)
        _run(ref_cmd, env)
        ours_runs, ref_runs = [], []
        for _ in range(args.repeat):  # interleaved, so that both see the same machine load
            ref_runs.append(_run(ref_cmd, env))
            ours_runs.append(_run(ours_cmd, env))
        ours = json.loads(ours_out.read_text())
        ref = json.loads(ref_out.read_text())
    diff = max(abs(ours[k] - ref[k]) for k in ref)
    if not args.skip_in_process:
        t_ref_in, t_ours_in = _in_process(gt, results, args.repeat)
    (w_ref, c_ref), (w_ours, c_ours) = min(ref_runs), min(ours_runs)
    c_ref, c_ours = min(c for _, c in ref_runs), min(c for _, c in ours_runs)
    print(f"{'':30s} {'wall':>8s} {'CPU':>8s}")
    print(f"{'pycocotools (python process)':30s} {w_ref:7.2f}s {c_ref:7.2f}s")
    print(f"{'pyramidpose eval (process)':30s} {w_ours:7.2f}s {c_ours:7.2f}s")
    print(f"{'speed ratio':30s} {w_ref / w_ours:7.1f}x {c_ref / c_ours:7.1f}x")
    med = [float(np.median([r[i] for r in runs])) for runs in (ref_runs, ours_runs) for i in (0, 1)]
    print(f"{'median ratio':30s} {med[0] / med[2]:7.1f}x {med[1] / med[3]:7.1f}x   (medians of the {args.repeat} runs)")
    print("CPU per run: pycocotools " + " ".join(f"{c:.2f}" for _, c in ref_runs)
          + " | ours " + " ".join(f"{c:.2f}" for _, c in ours_runs))  # fmt: skip
    if not args.skip_in_process:
        print(f"{'in-process, JSON already loaded':30s} (CPU: pycocotools {t_ref_in:.2f}s, ours {t_ours_in:.2f}s)")
        print(f"{'in-process speed ratio':30s} {t_ref_in / t_ours_in:7.1f}x")
    print(f"largest stat difference: {diff:.3g}")
    print("stats:", ", ".join(f"{k}={ours[k]:.4f}" for k in ref))
    return 0 if diff < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
