"""COCO keypoint evaluation: every stat identical to pycocotools on random and real data; bad input.

pycocotools is the reference (a test-only dependency). Random cases come from hypothesis and cover
crowd persons, ``ignore`` flags, persons with ``num_keypoints == 0``, images without persons or
detections, more than 20 detections per image, tied scores, duplicate persons (tied OKS), an
annotation id 0, two categories and results in a category absent from the ground truth.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyramidpose.errors import DataError
from pyramidpose.evaluation.coco_eval import STAT_KEYS, coco_keypoint_eval, default_sigmas, format_stats

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

TOL = 1e-9


def reference_stats(gt: dict, results: list, sigmas=None) -> dict[str, float]:
    """pycocotools' ten stats (its prints suppressed)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        dets = coco.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco, dets, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(STAT_KEYS, (float(s) for s in ev.stats)))


def ours(gt, results, **kw) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return coco_keypoint_eval(copy.deepcopy(gt), copy.deepcopy(results), **kw)


def assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(STAT_KEYS) == set(b)
    diffs = {k: abs(a[k] - b[k]) for k in STAT_KEYS}
    assert max(diffs.values()) < TOL, f"ours {a}\npycocotools {b}"


# ---------------------------------------------------------------------------------------------------
# random cases

COORDS = st.sampled_from([0.0, 1.0, 2.5, 4.0, 7.0, 10.0, 15.0, 30.0, 60.0, 120.0, 200.0])
AREAS = st.sampled_from([0.0, 50.0, 900.0, 1024.0, 3000.0, 9216.0, 20000.0, 60000.0])
SCORES = st.sampled_from([0.1, 0.3, 0.5, 0.5, 0.9, 1.0])


@st.composite
def coco_case(draw, k: int = 17):
    n_img = draw(st.integers(1, 5))
    img_ids = draw(st.lists(st.integers(1, 50), min_size=n_img, max_size=n_img, unique=True))
    cats = draw(st.sampled_from([[1], [1, 2]]))
    id_start = draw(st.sampled_from([0, 1, 1, 1]))
    anns, results = [], []
    for img in img_ids:
        persons = []
        for _ in range(draw(st.integers(0, 4))):
            if persons and draw(st.integers(0, 5)) == 0:
                base = copy.deepcopy(persons[-1])  # duplicate person: tied OKS between persons
            else:
                ox, oy = draw(COORDS), draw(COORDS)
                unlabelled = draw(st.integers(0, 4)) == 0  # OKS from the distance to the doubled box
                kp = []
                for _ in range(k):
                    v = 0 if unlabelled else draw(st.sampled_from([0, 1, 2, 2]))
                    kp += [ox + draw(COORDS), oy + draw(COORDS), v] if v else [0.0, 0.0, 0]
                nvis = sum(1 for j in range(k) if kp[3 * j + 2] > 0)
                base = {
                    "image_id": img,
                    "category_id": draw(st.sampled_from(cats)),
                    "keypoints": kp,
                    "num_keypoints": draw(st.sampled_from([nvis, nvis, nvis, 0])),
                    "area": draw(AREAS),
                    "bbox": [ox, oy, draw(st.sampled_from([1.0, 20.0, 80.0, 150.0])), draw(st.sampled_from([1.0, 40.0, 160.0]))],
                    "iscrowd": draw(st.sampled_from([0, 0, 0, 1])),
                }
                if draw(st.booleans()):
                    base["ignore"] = draw(st.sampled_from([0, 1]))
            persons.append(base)
        anns += persons
        for _ in range(draw(st.integers(0, 24))):
            if persons and draw(st.booleans()):
                p = draw(st.sampled_from(persons))
                kp = list(p["keypoints"])
                for j in range(k):
                    kp[3 * j] += draw(st.sampled_from([0.0, 0.0, 1.0, -2.0, 5.0, 20.0]))
                    kp[3 * j + 1] += draw(st.sampled_from([0.0, 0.0, 1.0, -3.0, 8.0]))
                    kp[3 * j + 2] = 1.0
                cat = p["category_id"]
            else:
                ox, oy = draw(COORDS), draw(COORDS)
                kp = [c for _ in range(k) for c in (ox + draw(COORDS), oy + draw(COORDS), 0.5)]
                cat = draw(st.sampled_from([*cats, 3]))  # 3: not a ground-truth category (not evaluated)
            results.append({"image_id": img, "category_id": cat, "keypoints": kp, "score": draw(SCORES)})
    for i, a in enumerate(anns):
        a["id"] = id_start + i
    gt = {
        "images": [{"id": i} for i in img_ids],
        "annotations": anns,
        "categories": [{"id": c, "name": f"c{c}"} for c in cats],
    }
    order = draw(st.permutations(range(len(results))))
    return gt, [results[i] for i in order]


def _has_evaluable_result(gt, results):
    return any(r["category_id"] in {c["id"] for c in gt["categories"]} for r in results)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(coco_case())
def test_random_cases_match_pycocotools(case):
    gt, results = case
    if not results:  # pycocotools cannot load an empty result list
        results = [{"image_id": gt["images"][0]["id"], "category_id": 99, "keypoints": [0.0] * 51, "score": 1.0}]
    assert_same(ours(gt, results), reference_stats(gt, results))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(coco_case(k=5), st.lists(st.sampled_from([0.02, 0.05, 0.1, 0.3]), min_size=5, max_size=5))
def test_custom_keypoint_set_and_sigmas(case, sigmas):
    gt, results = case
    if not _has_evaluable_result(gt, results):
        return
    assert_same(ours(gt, results, sigmas=sigmas), reference_stats(gt, results, sigmas=sigmas))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(coco_case())
def test_no_area_variant_equals_box_area_ground_truth(case):
    """use_area=False is pycocotools on ground truth whose area is bbox_h * bbox_w * 0.53 (xtcocotools)."""
    gt, results = case
    if not _has_evaluable_result(gt, results):
        return
    boxed = copy.deepcopy(gt)
    for a in boxed["annotations"]:
        a["area"] = a["bbox"][3] * a["bbox"][2] * 0.53
    plain = copy.deepcopy(gt)
    for a in plain["annotations"]:
        a["area"] = -12345.0  # must not be used
    assert_same(ours(plain, results, use_area=False), reference_stats(boxed, results))


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(coco_case())
def test_random_cases_match_pycocotools_long(case):
    gt, results = case
    if not _has_evaluable_result(gt, results):
        return
    assert_same(ours(gt, results), reference_stats(gt, results))


def test_results_with_bbox_use_box_area_like_loadres():
    """When the first result has a bbox, pycocotools' loadRes takes the detection area from it."""
    rng = np.random.default_rng(3)
    kp = np.c_[rng.uniform(100, 300, (17, 2)), np.full(17, 2)]
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "keypoints": kp.ravel().tolist(), "num_keypoints": 17,
             "area": 5000.0, "bbox": [100, 100, 200, 200], "iscrowd": 0},
        ],
    }  # fmt: skip
    tp = kp.copy()
    tp[:, :2] += rng.normal(0, 3, (17, 2))
    fp = np.c_[rng.uniform(400, 600, (17, 2)), np.full(17, 0.5)]  # far away, keypoint extent ~ 200 x 200
    res = [
        {"image_id": 1, "category_id": 1, "keypoints": tp.ravel().tolist(), "score": 0.5, "bbox": [0, 0, 40, 50]},
        {"image_id": 1, "category_id": 1, "keypoints": fp.ravel().tolist(), "score": 0.9, "bbox": [0, 0, 40, 50]},
    ]
    assert_same(ours(gt, res), reference_stats(gt, res))
    no_box = [{k: v for k, v in r.items() if k != "bbox"} for r in res]
    assert_same(ours(gt, no_box), reference_stats(gt, no_box))
    # With boxes the false positive is medium-sized and counts; without, its keypoint extent is large.
    assert ours(gt, res)["APm"] < ours(gt, no_box)["APm"]


# ---------------------------------------------------------------------------------------------------
# real data


def _jittered_results(gt: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    res = []
    for a in gt["annotations"]:
        if a["num_keypoints"] == 0 or rng.random() < 0.1:
            continue
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        scale = math.sqrt(max(a["area"], 1.0))
        for _ in range(int(rng.integers(1, 4))):
            d = kp.copy()
            d[:, :2] += rng.normal(0, scale * rng.uniform(0.01, 0.2), (17, 2))
            d[:, 2] = rng.random(17)
            res.append({"image_id": a["image_id"], "category_id": 1, "keypoints": d.ravel().tolist(),
                        "score": round(float(rng.random()), 1)})  # fmt: skip
    for img in gt["images"][::3]:  # false positives, also on images without people
        d = np.c_[rng.uniform(0, img["width"], 17), rng.uniform(0, img["height"], 17), rng.random(17)]
        res.append({"image_id": img["id"], "category_id": 1, "keypoints": d.ravel().tolist(),
                    "score": round(float(rng.random()), 1)})  # fmt: skip
    return res


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_mini_val_matches_pycocotools(coco_mini, seed):
    gt = json.loads((coco_mini / "annotations" / "person_keypoints_val2017.json").read_text())
    res = _jittered_results(gt, seed)
    assert len(res) > 50
    assert_same(ours(gt, res), reference_stats(gt, res))


def test_coco_mini_from_paths_and_cli(coco_mini, tmp_path, capsys):
    gt_path = coco_mini / "annotations" / "person_keypoints_val2017.json"
    gt = json.loads(gt_path.read_text())
    res = _jittered_results(gt, 7)
    res_path = tmp_path / "results.json"
    res_path.write_text(json.dumps(res))
    expected = reference_stats(gt, res)
    assert_same(coco_keypoint_eval(gt_path, str(res_path)), expected)

    from pyramidpose.commands import evaluate

    out = tmp_path / "out" / "stats.json"
    assert evaluate.main(["--gt", str(gt_path), "--pred", str(res_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.rstrip("\n").splitlines()
    assert len(printed) == 10
    assert printed[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ] = ")
    assert printed[0].endswith(f"{expected['AP']:0.3f}")
    assert printed[8] == f" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets= 20 ] = {expected['ARm']:0.3f}"
    assert_same(json.loads(out.read_text()), expected)


def test_in_memory_numpy_results_and_coco_object(coco_mini):
    gt = json.loads((coco_mini / "annotations" / "person_keypoints_val2017.json").read_text())
    res = _jittered_results(gt, 11)
    as_numpy = [
        {**r, "keypoints": np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3), "score": np.float32(r["score"]),
         "image_id": np.int64(r["image_id"])}
        for r in res
    ]  # fmt: skip
    for r, a in zip(res, as_numpy):
        r["score"] = float(a["score"])  # the same (float32-rounded) score on both sides
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
    assert_same(coco_keypoint_eval(coco, as_numpy), reference_stats(gt, res))


# ---------------------------------------------------------------------------------------------------
# edge cases, bad input, CLI


def _small_gt():
    kp = [10.0, 10.0, 2] * 17
    return {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "keypoints": kp, "num_keypoints": 17, "area": 5000.0,
             "bbox": [0, 0, 50, 100], "iscrowd": 0},
        ],
    }  # fmt: skip


def _good_result(**kw):
    r = {"image_id": 1, "category_id": 1, "keypoints": [10.0, 10.0, 1.0] * 17, "score": 0.5}
    r.update(kw)
    return r


def test_perfect_and_missing_detections():
    gt = _small_gt()
    stats = coco_keypoint_eval(gt, [_good_result()])
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert stats["APl"] == -1 and stats["ARl"] == -1  # no large person: -1 like pycocotools
    assert_same(stats, reference_stats(gt, [_good_result()]))


def test_empty_results_warn_and_give_no_detection_stats():
    gt = _small_gt()
    with pytest.warns(UserWarning, match="empty"):
        stats = coco_keypoint_eval(gt, [])
    # pycocotools crashes on []; a result in a category it does not evaluate is "no detections" to it.
    expected = reference_stats(gt, [_good_result(category_id=5)])
    assert_same(stats, expected)
    assert stats["AP"] == 0 and stats["AR"] == 0 and stats["APl"] == -1


def test_ignore_field_has_no_effect_like_pycocotools():
    gt = _small_gt()
    flagged = copy.deepcopy(gt)
    flagged["annotations"][0]["ignore"] = 1
    assert coco_keypoint_eval(flagged, [_good_result()]) == coco_keypoint_eval(gt, [_good_result()])


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (_good_result(keypoints=[1.0] * 50), "50 values in 'keypoints', expected 51"),
        (_good_result(keypoints=[float("nan")] + [1.0] * 50), "NaN or infinite"),
        (_good_result(keypoints=[float("inf")] + [1.0] * 50), "NaN or infinite"),
        (_good_result(score=float("nan")), "NaN or infinite"),
        (_good_result(score="high"), "non-numeric score"),
        (_good_result(score=None), "non-numeric score"),
        (_good_result(keypoints=["a"] + [1.0] * 50), "non-numeric value"),
        (_good_result(keypoints=None), "expected 51"),
        (_good_result(image_id=99), "image_id 99, which is not an image of the ground truth"),
        ({"image_id": 1, "category_id": 1, "keypoints": [1.0] * 51}, "no 'score' field"),
        ({"image_id": 1, "category_id": 1, "score": 1.0}, "no 'keypoints' field"),
        ({"category_id": 1, "keypoints": [1.0] * 51, "score": 1.0}, "no 'image_id' field"),
        ([1, 2, 3], "is not an object"),
    ],
)
def test_bad_results_name_the_first_offending_record(bad, fragment):
    results = [_good_result(), _good_result(image_id=2), bad, _good_result(image_id=99)]
    with pytest.raises(DataError) as info:
        coco_keypoint_eval(_small_gt(), results)
    msg = str(info.value)
    assert msg.startswith("results[2]"), msg
    assert fragment in msg, msg


def test_first_offending_record_wins_across_kinds_of_error():
    results = [_good_result(), _good_result(keypoints=[float("nan")] * 51), _good_result(image_id=42)]
    with pytest.raises(DataError, match=r"^results\[1\]"):
        coco_keypoint_eval(_small_gt(), results)


def test_bad_files_and_ground_truth(tmp_path):
    with pytest.raises(DataError, match="not found"):
        coco_keypoint_eval(tmp_path / "missing.json", [])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        coco_keypoint_eval(broken, [])
    with pytest.raises(DataError, match="results must be a JSON list"):
        coco_keypoint_eval(_small_gt(), {"image_id": 1})
    gt = _small_gt()
    gt["annotations"][0]["keypoints"] = [1.0] * 10
    with pytest.raises(DataError, match=r"annotations\[0\].*51 numbers"):
        coco_keypoint_eval(gt, [_good_result()])
    gt = _small_gt()
    gt["annotations"].append(dict(gt["annotations"][0]))
    with pytest.raises(DataError, match="duplicate annotation id 1"):
        coco_keypoint_eval(gt, [_good_result()])
    with pytest.raises(DataError, match="sigmas"):
        coco_keypoint_eval(_small_gt(), [_good_result()], sigmas=[0.1, -1.0])
    gt = _small_gt()
    gt["annotations"][0]["num_keypoints"] = "17"
    with pytest.raises(DataError, match="'num_keypoints' must be a number"):
        coco_keypoint_eval(gt, [_good_result()])
    gt = _small_gt()
    del gt["annotations"][0]["area"]
    with pytest.raises(DataError, match="'area'.*--no-area"):
        coco_keypoint_eval(gt, [_good_result()])
    assert coco_keypoint_eval(gt, [_good_result()], use_area=False)["AP"] == pytest.approx(1.0)
    gt["annotations"][0]["keypoints"][4] = None
    with pytest.raises(DataError, match="annotation id 1: keypoints contain a non-numeric value None"):
        coco_keypoint_eval(gt, [_good_result()], use_area=False)


def test_default_sigmas_are_pycocotools_bit_for_bit():
    ref = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]) / 10.0
    assert np.array_equal(default_sigmas(), ref)
    from pyramidpose.skeletons import COCO

    assert np.allclose(default_sigmas(), COCO.sigmas_array(), rtol=0, atol=1e-12)  # the same layout


def test_format_stats_matches_pycocotools_summary():
    gt = _small_gt()
    res = [_good_result(), _good_result(keypoints=[14.0, 12.0, 1.0] * 17, score=0.9)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(res)), "keypoints")
        ev.evaluate()
        ev.accumulate()
        buf.seek(0)
        buf.truncate()
        ev.summarize()
    assert format_stats(coco_keypoint_eval(gt, res)) == buf.getvalue().rstrip("\n")


def test_cli_errors_and_sigmas_file(tmp_path, capsys):
    from pyramidpose import cli

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(_small_gt()))
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps([_good_result(), _good_result(score="x")]))
    assert cli.main(["eval", "--gt", str(gt_path), "--pred", str(res_path)]) == 2
    err = capsys.readouterr().err
    assert "results[1]" in err and "Traceback" not in err
    res_path.write_text(json.dumps([_good_result()]))
    sig = tmp_path / "sigmas.json"
    sig.write_text(json.dumps([0.05] * 17))
    out = tmp_path / "s.json"
    assert cli.main(["eval", "--gt", str(gt_path), "--pred", str(res_path), "--sigmas", str(sig), "--no-area",
                     "--out", str(out)]) == 0  # fmt: skip
    assert set(json.loads(out.read_text())) == set(STAT_KEYS)
    sig.write_text(json.dumps([0.05] * 5))
    assert cli.main(["eval", "--gt", str(gt_path), "--pred", str(res_path), "--sigmas", str(sig)]) == 2
    assert "sigmas define 5 keypoints" in capsys.readouterr().err


def test_cli_sigmas_by_keypoint_set_name(tmp_path, capsys):
    from pyramidpose import cli
    from pyramidpose.skeletons import get_keypoint_set

    sig = get_keypoint_set("crowdpose").sigmas_array()
    rng = np.random.default_rng(5)
    anns, res = [], []
    for i in range(6):
        kp = np.c_[rng.uniform(0, 200, (14, 2)), np.full(14, 2)]
        anns.append({"id": i + 1, "image_id": 1 + i % 2, "category_id": 1, "keypoints": kp.ravel().tolist(),
                     "num_keypoints": 14, "area": 4000.0 + 3000 * i, "bbox": [0, 0, 200, 200], "iscrowd": 0})  # fmt: skip
        d = kp.copy()
        d[:, :2] += rng.normal(0, 4, (14, 2))
        res.append({"image_id": 1 + i % 2, "category_id": 1, "keypoints": d.ravel().tolist(), "score": float(rng.random())})
    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1}], "annotations": anns}
    gt_path, res_path, out = tmp_path / "gt.json", tmp_path / "res.json", tmp_path / "out.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(res))
    assert cli.main(["eval", "--gt", str(gt_path), "--pred", str(res_path), "--sigmas", "crowdpose", "--out", str(out)]) == 0
    assert_same(json.loads(out.read_text()), reference_stats(gt, res, sigmas=sig))
    assert cli.main(["eval", "--gt", str(gt_path), "--pred", str(res_path), "--sigmas", "h36m"]) == 2
    assert "has no OKS sigmas" in capsys.readouterr().err


def test_eval_command_does_not_import_torch(tmp_path):
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(_small_gt()))
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps([_good_result()]))
    code = (
        "import sys\nfrom pyramidpose import cli\n"
        f"rc = cli.main(['eval', '--gt', {str(gt_path)!r}, '--pred', {str(res_path)!r}])\n"
        "assert rc == 0, rc\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "NO-TORCH"


# ---------------------------------------------------------------------------------------------------
# files: the pysimdjson fast path and the careful path give the same stats and the same errors


def _eval_files(gt, results, tmp_dir, name="case", text=None, **kw):
    """Write ``gt`` and ``results`` (or the raw ``text`` of the results) as files and evaluate the paths."""
    from pathlib import Path

    gt_path, res_path = Path(tmp_dir) / f"{name}_gt.json", Path(tmp_dir) / f"{name}_res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results) if text is None else text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return coco_keypoint_eval(gt_path, res_path, **kw)


def _fast_path_taken(gt, results, k=17):
    """Whether both files go through the pysimdjson fast path (no fallback to the careful path)."""
    from pyramidpose.evaluation.coco_files import Detections as _Detections
    from pyramidpose.evaluation.coco_files import GroundTruth as _GroundTruth
    from pyramidpose.evaluation.coco_files import JsonFile as _JsonFile
    from pyramidpose.evaluation.coco_files import simdjson_parser as _simdjson_parser

    sig = np.full(k, 0.05) if k != 17 else default_sigmas()
    g = _GroundTruth.from_document(_JsonFile(None, json.dumps(gt).encode(), "gt").document(), sig, True)
    if g is None:
        return False
    data = json.dumps(results).encode()
    cols = _Detections.columns_from_file(_JsonFile(None, data, "results"), _simdjson_parser(), k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # results in a category absent from the ground truth
        return cols is not None and _Detections.from_columns(cols, g) is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(coco_case())
def test_random_cases_from_files_match_pycocotools(case):
    import tempfile

    gt, results = case
    if not _has_evaluable_result(gt, results):
        return
    with tempfile.TemporaryDirectory() as tmp:
        assert_same(_eval_files(gt, results, tmp), reference_stats(gt, results))
    assert _fast_path_taken(gt, results)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(coco_case())
def test_random_cases_from_files_match_pycocotools_long(case):
    test_random_cases_from_files_match_pycocotools.hypothesis.inner_test(case)


def test_fast_path_on_real_files_equals_careful_path(coco_mini, tmp_path):
    pytest.importorskip("simdjson")
    gt = json.loads((coco_mini / "annotations" / "person_keypoints_val2017.json").read_text())
    res = _jittered_results(gt, 3)
    assert _fast_path_taken(gt, res)
    expected = reference_stats(gt, res)
    assert_same(_eval_files(gt, res, tmp_path), expected)
    assert_same(ours(gt, res), expected)  # in memory: the careful path
    boxed = [{**r, "bbox": [0.0, 0.0, 50.0 + i % 7, 60.0]} for i, r in enumerate(res)]  # loadRes' box branch
    assert _fast_path_taken(gt, boxed)
    assert_same(_eval_files(gt, boxed, tmp_path, "boxed"), reference_stats(gt, boxed))


def test_files_without_pysimdjson_give_the_same_stats(coco_mini, tmp_path, monkeypatch):
    gt = json.loads((coco_mini / "annotations" / "person_keypoints_val2017.json").read_text())
    res = _jittered_results(gt, 4)
    with_fast = _eval_files(gt, res, tmp_path)
    monkeypatch.setitem(sys.modules, "simdjson", None)  # import simdjson now raises ImportError
    assert _eval_files(gt, res, tmp_path) == with_fast
    assert_same(with_fast, reference_stats(gt, res))


def test_unusual_files_fall_back_to_the_careful_path(tmp_path):
    gt = _small_gt()
    good = json.dumps(_good_result())[1:-1]
    # A repeated key: pycocotools (json) keeps the last value, pysimdjson would give the first.
    dup = "[{" + good + ', "score": 0.1}, ' + json.dumps(_good_result(keypoints=[14.0, 12.0, 1.0] * 17, score=0.3)) + "]"
    dup_records = json.loads(dup)
    assert dup_records[0]["score"] == 0.1
    first_wins = [dict(dup_records[0], score=0.5), dup_records[1]]
    assert reference_stats(gt, first_wins) != reference_stats(gt, dup_records)  # the repeated key matters
    assert_same(_eval_files(gt, [], tmp_path, "dup", text=dup), reference_stats(gt, dup_records))
    gt_dup = json.dumps(gt).replace('"area": 5000.0', '"area": 5000.0, "area": 20.0')
    (tmp_path / "gt_dup.json").write_text(gt_dup)
    (tmp_path / "res.json").write_text(json.dumps([_good_result(keypoints=[11.0, 12.0, 1.0] * 17)]))
    expected = reference_stats(json.loads(gt_dup), [_good_result(keypoints=[11.0, 12.0, 1.0] * 17)])
    assert_same(coco_keypoint_eval(tmp_path / "gt_dup.json", tmp_path / "res.json"), expected)
    assert expected != reference_stats(gt, [_good_result(keypoints=[11.0, 12.0, 1.0] * 17)])  # area matters
    # Numbers in other forms: integers, exponents, integral floats as image ids.
    odd = [_good_result(score=1), _good_result(image_id=2.0, keypoints=[1e1, 1.2e1, 1] * 17, score=2.5e-1)]
    assert_same(_eval_files(gt, odd, tmp_path, "odd"), reference_stats(gt, odd))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[{good}, {good}, {bad_nan}]", "NaN or infinite"),
        ("[{good}, {good}, {nested}]", "17 values in 'keypoints', expected 51"),
        ("[{good}, {good}, {bool_score}]", "non-numeric score True"),
        ("[{good}, {good}, {unknown_image}]", "image_id 99, which is not an image"),
        ("[{good}, {good}, {no_score}]", "no 'score' field"),
        ("[{good}, {good}, [1, 2]]", "is not an object"),
        ("[{good}, {good}, {big}]", "NaN or infinite"),
    ],
)
def test_bad_result_files_name_the_first_offending_record(tmp_path, text, fragment):
    records = {
        "good": json.dumps(_good_result()),
        "bad_nan": json.dumps(_good_result(keypoints=[float("nan")] + [1.0] * 50)),
        "nested": json.dumps(_good_result(keypoints=[[10.0, 10.0, 1.0]] * 17)),
        "bool_score": json.dumps(_good_result(score=True)),
        "unknown_image": json.dumps(_good_result(image_id=99)),
        "no_score": json.dumps({"image_id": 1, "category_id": 1, "keypoints": [1.0] * 51}),
        "big": json.dumps(_good_result()).replace('"score": 0.5', '"score": 1e400'),
    }
    with pytest.raises(DataError) as info:
        _eval_files(_small_gt(), [], tmp_path, text=text.format(**records))
    msg = str(info.value)
    assert msg.startswith("results[2]"), msg
    assert fragment in msg, msg


def test_bad_ground_truth_files_are_named_like_in_memory(tmp_path):
    gt = _small_gt()
    gt["annotations"][0]["keypoints"] = [[10.0, 10.0, 2]] * 17  # nested lists: 17 entries, not 51
    with pytest.raises(DataError, match=r"annotations\[0\].*51 numbers.*got 17"):
        _eval_files(gt, [_good_result()], tmp_path)
    gt = _small_gt()
    gt["annotations"][0]["iscrowd"] = True  # a JSON true is accepted as a flag, like pycocotools
    assert_same(_eval_files(gt, [_good_result()], tmp_path, "crowd"), reference_stats(gt, [_good_result()]))


@pytest.mark.parametrize("layout", ["default", "compact", "indented", "string_with_cut_pattern"])
def test_results_parsed_in_pieces_equal_pycocotools(coco_mini, tmp_path, monkeypatch, layout):
    """Large result files are parsed in pieces of whole records; cuts in the wrong place fall back."""
    pytest.importorskip("simdjson")
    from pyramidpose.evaluation import coco_files

    gt_path = coco_mini / "annotations" / "person_keypoints_val2017.json"
    gt = json.loads(gt_path.read_text())
    res = _jittered_results(gt, 5)
    if layout == "string_with_cut_pattern":
        res = [{**r, "note": "a}, {b"} for r in res]
    dumps = {"compact": {"separators": (",", ":")}, "indented": {"indent": 1}}.get(layout, {})
    res_path = tmp_path / "results.json"
    res_path.write_text(json.dumps(res, **dumps))
    monkeypatch.setattr(coco_files, "PIECE_BYTES", 3000)  # many pieces
    pieces = list(coco_files.JsonFile(res_path, res_path.read_bytes(), "results").pieces())
    assert len(pieces) > 10
    decoded = []
    real_decode = coco_files.JsonFile.decode
    monkeypatch.setattr(coco_files.JsonFile, "decode", lambda self: decoded.append(self.what) or real_decode(self))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = coco_keypoint_eval(gt_path, res_path)
    assert_same(stats, reference_stats(gt, res))
    # Well-formed layouts take the fast path; a cut inside a string makes a piece invalid: careful path.
    assert decoded == (["results"] if layout == "string_with_cut_pattern" else [])
