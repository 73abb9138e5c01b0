"""COCO keypoint evaluation (OKS AP/AR) giving exactly pycocotools' numbers, vectorised in numpy.

:func:`coco_keypoint_eval` reproduces ``pycocotools.cocoeval.COCOeval(gt, dt, 'keypoints')`` followed
by ``evaluate(); accumulate(); summarize()`` stat for stat, including its less obvious rules:

* evaluated images are all image ids of ``gt['images']`` (sorted); categories are ``gt['categories']``;
  annotations whose image or category is not listed are not evaluated (as in pycocotools);
* a ground-truth person is *ignored* when ``iscrowd`` is set or ``num_keypoints == 0``; crowd persons
  can absorb any number of detections. The annotation field ``ignore`` has **no** effect, exactly as
  in pycocotools (its ``_prepare`` overwrites it with the crowd flag);
* per image the detections are ordered by score with a stable sort (ties keep file order) and cut to
  the top ``maxDets = 20``; over the data set they are re-sorted stably, so tied scores are broken by
  image id, then by their order within the image;
* a detection's area (for the medium/large ranges) is ``w * h`` of the extent of *all* its keypoints
  (pycocotools' ``loadRes``), or ``bbox[2] * bbox[3]`` when the *first* result has a non-empty
  ``bbox`` field (``loadRes`` then takes its box branch for every result);
* greedy matching per OKS threshold: each detection, in score order, takes the best-OKS unmatched
  regular person with OKS >= threshold (the *last* one on exact ties), and only if there is none the
  best ignored person;
* a stat is -1 where its area range has no non-ignored person.

Differences from pycocotools, all on input pycocotools cannot handle: bad results raise
:class:`~pyramidpose.errors.DataError` naming the first offending record (pycocotools asserts or
crashes); an empty result list gives the no-detection stats with a warning (pycocotools crashes);
a missing ``iscrowd`` means 0 and a missing ``num_keypoints`` means the count of labelled keypoints
(pycocotools raises ``KeyError``); duplicate ground-truth annotation ids are an error (pycocotools
silently evaluates the last annotation with that id in place of the others).

``use_area=False`` is the CrowdPose-style variant of xtcocotools: the ground-truth scale used in OKS
and in the area ranges is ``bbox_w * bbox_h * 0.53`` instead of the ``area`` field.

How it is fast: files are memory-mapped and decoded lazily by pysimdjson (only the needed fields;
keypoint lists straight into arrays; the results file in pieces of whole records), with a careful
per-record path on the standard library's decoding for anything unusual (it names the first bad
record). OKS for all detection/person pairs of the data set is one set of array operations, summed
group by group in pycocotools' order (bit-identical); the sequential greedy matching runs as a loop
over the detection rank inside an image (at most 20 steps), each step handling every image, area
range and threshold at once with segment reductions; accumulation is cumulative sums per area and
threshold. No Python loop runs over pairs, detections or (on the fast path) records.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.errors import DataError

STAT_KEYS: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
# Same construction as pycocotools' Params.setKpParams (bit-identical thresholds).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES: tuple[tuple[float, float], ...] = ((0**2, 1e5**2), (32**2, 96**2), (96**2, 1e5**2))
AREA_LABELS: tuple[str, ...] = ("all", "medium", "large")
MAX_DETS = 20
_EPS = np.spacing(1)
_COCO_SIGMAS_X10 = (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89)  # fmt: skip
_PIECE_BYTES = 2 << 20  # results files are parsed in pieces of about this size (see _JsonFile.pieces)
_PAIR_CHUNK = 16_384  # OKS pairs processed per chunk (keeps the temporaries in cache)


def default_sigmas() -> np.ndarray:
    """COCO's 17 OKS sigmas, computed exactly as pycocotools does (``array([.26, .25, ...]) / 10``), so
    that every OKS value is identical to the last bit.

    The same values as :data:`pyramidpose.skeletons.COCO` (a test checks it); written out here so that
    ``pyramidpose eval`` does not import the skeleton module (dataclasses) at start-up.
    """
    return np.array(_COCO_SIGMAS_X10) / 10.0


def load_sigmas(path: str | os.PathLike[str]) -> np.ndarray:
    """Read per-keypoint OKS sigmas from a JSON list (or ``{"sigmas": [...]}``) or a text file of numbers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read sigmas file {path}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            obj = obj.get("sigmas")
    except (json.JSONDecodeError, RecursionError):
        obj = text.replace(",", " ").split()
    try:
        sig = np.asarray([float(v) for v in obj], dtype=np.float64)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DataError(
            f"{path}: expected a JSON list of numbers (one OKS sigma per keypoint) or whitespace-separated numbers"
        ) from None
    if sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise DataError(f"{path}: sigmas must be a non-empty list of positive finite numbers")
    return sig


class _JsonFile:
    """The bytes of a JSON file, decoded on demand: lazily by pysimdjson (fast path) or fully by ``json``."""

    def __init__(self, path: Path, data: Any, what: str) -> None:
        """``data``: the file's bytes, or a read-only memory map of them."""
        self.path, self.data, self.what = path, data, what

    def document(self, parser: Any = None) -> Any:
        """The pysimdjson document (elements are decoded only when touched), or None when pysimdjson is not
        installed or refuses the text (``NaN`` tokens, integers beyond 64 bits, invalid JSON, ...): the
        standard library then decides what the text means, so the accepted input and the error messages
        never depend on pysimdjson."""
        try:
            import simdjson
        except ImportError:
            return None
        # A reused ``parser`` reuses its buffers (fewer fresh pages to fault in); should it still be
        # busy or refuse, a fresh parser gets the final word.
        for p in (parser, None) if parser is not None else (None,):
            try:
                return (p or simdjson.Parser()).parse(self.data)  # the document keeps its parser alive
            except Exception:
                continue
        return None

    def pieces(self, size: int | None = None) -> Iterator[bytes]:
        """The text of a JSON list of objects as a few smaller JSON lists of consecutive objects, cut
        between two objects (at ``},`` followed by ``{``) about every ``size`` bytes (default
        ``_PIECE_BYTES``); one piece (the whole text) if it is small or no cut is found.

        A cut made anywhere else (inside a string or a nested value) leaves a piece that is not valid
        JSON, so when every piece parses, the pieces hold exactly the objects of the whole list. The
        caller treats a piece that does not parse like a file that does not.
        """
        data = self.data
        total = len(data)
        size = size or _PIECE_BYTES
        start, prefix = 0, b""
        while total - start > 2 * size:
            cut = data.find(b"},", start + size)
            nxt = cut + 2
            while 0 <= cut and nxt < total and data[nxt : nxt + 1] in (b" ", b"\n", b"\r", b"\t"):
                nxt += 1
            if cut < 0 or data[nxt : nxt + 1] != b"{":
                break
            yield prefix + data[start : cut + 1] + b"]"
            start, prefix = nxt, b"["
        yield prefix + data[start:]

    def decode(self) -> Any:
        """The whole file as Python objects (standard library, as pycocotools reads it)."""
        try:
            return json.loads(self.data if isinstance(self.data, bytes) else self.data[:])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.what} file {self.path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise DataError(f"{self.what} file {self.path}: JSON nested too deeply to read.") from None


def _read_file(path: Path) -> Any:
    """The file's bytes: memory-mapped (read-only; pysimdjson copies what it needs, so the pages are
    not also copied into a bytes object first), or read when mapping is not possible (empty files)."""
    import mmap

    with open(path, "rb") as f:
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):
            return f.read()


def _simdjson_parser() -> Any:
    """A pysimdjson parser to share between the two files, or None without pysimdjson."""
    try:
        import simdjson
    except ImportError:
        return None
    return simdjson.Parser()


def _load_json(obj: Any, what: str) -> Any:
    """A path becomes a :class:`_JsonFile`; anything else (already loaded data) is returned as it is."""
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        try:
            return _JsonFile(path, _read_file(path), what)
        except FileNotFoundError:
            raise DataError(f"{what} file not found: {path}") from None
        except OSError as exc:
            raise DataError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    return obj


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _numeric_matrix(rows: list[Any], width: int) -> np.ndarray | None:
    """``rows`` (lists of numbers, all of length ``width``) as float64 (n, width), or None if any is non-numeric."""
    if not rows:
        return np.zeros((0, width), dtype=np.float64)
    try:
        arr = np.array(rows)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind not in "iuf" or arr.shape != (len(rows), width):
        return None
    return arr.astype(np.float64, copy=False)


def _first_bad_row(rows: list[Any]) -> tuple[int, str] | None:
    for i, row in enumerate(rows):
        for v in row:
            if not _is_number(v):
                return i, f"non-numeric value {v!r}"
            if not np.isfinite(v):
                return i, f"non-finite value {v!r}"
    return None


class _GroundTruth:
    """Ground truth as flat arrays ordered by (category, image, file order)."""

    def __init__(self, gt: dict[str, Any], sigmas: np.ndarray, use_area: bool) -> None:
        k = len(sigmas)
        if not isinstance(gt, dict):
            raise DataError(
                "ground truth must be a COCO annotation object (a JSON dict with 'images', 'annotations', 'categories')"
            )
        for field in ("images", "annotations", "categories"):
            if not isinstance(gt.get(field), list):
                raise DataError(
                    f"ground truth has no '{field}' list; is this a COCO keypoint annotation file?"
                )
        img_ids = []
        for i, img in enumerate(gt["images"]):
            if not isinstance(img, dict) or "id" not in img:
                raise DataError(f"ground truth images[{i}] has no 'id'")
            img_ids.append(img["id"])
        cat_ids = []
        for i, cat in enumerate(gt["categories"]):
            if not isinstance(cat, dict) or "id" not in cat:
                raise DataError(f"ground truth categories[{i}] has no 'id'")
            cat_ids.append(cat["id"])
        if not cat_ids:
            raise DataError(
                "ground truth lists no categories; a keypoint file needs e.g. {'id': 1, 'name': 'person'}"
            )
        try:
            self._set_ids(img_ids, cat_ids)
        except TypeError:
            raise DataError("ground truth image or category ids mix types that cannot be sorted") from None
        n_img = self.n_img

        units, kpts, areas, boxes, crowd, nkp, ann_ids = [], [], [], [], [], [], []
        seen_ids: set[Any] = set()
        for i, ann in enumerate(gt["annotations"]):
            where = f"ground truth annotations[{i}]"
            if not isinstance(ann, dict):
                raise DataError(f"{where} is not an object")
            for field in ("id", "image_id", "category_id"):
                if field not in ann:
                    raise DataError(f"{where} has no '{field}'")
            try:
                ip = self.img_pos.get(ann["image_id"])
                cp = self.cat_pos.get(ann["category_id"])
            except TypeError:
                raise DataError(f"{where}: image_id / category_id must be numbers or strings") from None
            if ip is None or cp is None:
                continue  # not evaluated by pycocotools either
            if not _is_number(ann["id"]):
                raise DataError(f"{where}: annotation id {ann['id']!r} is not a number")
            if ann["id"] in seen_ids:
                raise DataError(f"{where}: duplicate annotation id {ann['id']!r}")
            seen_ids.add(ann["id"])
            kp = ann.get("keypoints")
            if not isinstance(kp, list) or len(kp) != 3 * k:
                n = len(kp) if isinstance(kp, list) else None
                raise DataError(
                    f"{where} (id {ann['id']}): 'keypoints' must be a list of {3 * k} numbers "
                    f"({k} keypoints x (x, y, v); the OKS sigmas define {k} keypoints), "
                    f"got {n if n is not None else type(kp).__name__}"
                )
            bb = ann.get("bbox")
            if not isinstance(bb, list) or len(bb) != 4 or not all(_is_number(v) for v in bb):
                raise DataError(f"{where} (id {ann['id']}): 'bbox' must be [x, y, w, h]")
            if use_area:
                a = ann.get("area")
                if not _is_number(a) or not np.isfinite(a):
                    raise DataError(
                        f"{where} (id {ann['id']}): missing or non-numeric 'area' "
                        "(use use_area=False / --no-area to take the area from the box)"
                    )
            else:
                a = bb[3] * bb[2] * 0.53  # xtcocotools' order of operations
            units.append(cp * n_img + ip)
            kpts.append(kp)
            areas.append(a)
            boxes.append(bb)
            crowd.append(bool(ann.get("iscrowd", 0)))
            nk = ann.get("num_keypoints")
            if nk is not None and not _is_number(nk):
                raise DataError(f"{where} (id {ann['id']}): 'num_keypoints' must be a number, got {nk!r}")
            nkp.append(nk)
            ann_ids.append(ann["id"])
        kp_arr = _numeric_matrix(kpts, 3 * k)
        if kp_arr is None or not np.all(np.isfinite(kp_arr)):
            bad = _first_bad_row(kpts)
            if bad is not None:
                raise DataError(f"ground truth annotation id {ann_ids[bad[0]]}: keypoints contain a {bad[1]}")
            raise DataError("ground truth keypoints could not be read as numbers")
        self._finish(units, kp_arr.reshape(-1, k, 3), areas, boxes, crowd, nkp, ann_ids)

    def _set_ids(self, img_ids: list[Any], cat_ids: list[Any]) -> None:
        self.img_ids = sorted(set(img_ids))
        self.cat_ids = sorted(set(cat_ids))
        self.img_pos = {v: i for i, v in enumerate(self.img_ids)}
        self.cat_pos = {v: i for i, v in enumerate(self.cat_ids)}
        self.n_img = len(self.img_ids)
        self.n_units = self.n_img * len(self.cat_ids)

    def _finish(
        self,
        units: Any,
        kp_arr: np.ndarray,
        areas: Any,
        boxes: Any,
        crowd: Any,
        nkp: list[Any],
        ann_ids: list[Any],
    ) -> None:
        """Arrays from validated columns: ``kp_arr`` (n, K, 3); ``nkp`` None where ``num_keypoints`` is absent."""
        if None in nkp:
            vis_count = np.count_nonzero(kp_arr[:, :, 2] > 0, axis=1)
            nkp = [vis_count[i] if v is None else v for i, v in enumerate(nkp)]
        nkp_arr = np.array(nkp, dtype=np.float64)
        units_arr = np.asarray(units, dtype=np.int64)
        order = np.argsort(units_arr, kind="stable")  # by (category, image), file order within
        self.unit = units_arr[order]
        self.kpts = kp_arr[order]
        self.area = np.asarray(areas, dtype=np.float64)[order]
        self.bbox = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order]
        self.crowd = np.asarray(crowd, dtype=bool)[order]
        self.ignore = self.crowd | (nkp_arr[order] == 0)
        ids = np.asarray(ann_ids, dtype=np.float64)[order]
        self.id_nonzero = ids != 0  # pycocotools stores matches by id, so a match to id 0 reads as none

    @classmethod
    def from_document(cls, doc: Any, sigmas: np.ndarray, use_area: bool) -> _GroundTruth | None:
        """The ground truth straight from a pysimdjson document, or None if anything is unusual.

        Only the fields evaluation needs are decoded (``segmentation`` polygons never are); numeric
        lists become arrays without Python floats. Anything this path does not prove well-formed
        (missing fields, unexpected types, nested lists, duplicate keys in an object, duplicate ids,
        ...) returns None, and the careful per-record path then runs on the fully decoded file and
        names the problem. Where both accept the input they give identical arrays.
        """
        if doc is None:
            return None
        import simdjson

        obj, arr = simdjson.Object, simdjson.Array
        k = len(sigmas)
        num = {int, float}
        try:
            if not isinstance(doc, obj) or not _unique_keys(doc):
                return None
            images, anns, cats = doc["images"], doc["annotations"], doc["categories"]
            if not (isinstance(images, arr) and isinstance(anns, arr) and isinstance(cats, arr)):
                return None
            images, anns, cats = list(images), list(anns), list(cats)
            if not cats or not all(map(_unique_keys, images)) or not all(map(_unique_keys, cats)):
                return None
            if not all(map(_unique_keys, anns)):
                return None
            img_ids = [o["id"] for o in images]
            cat_ids = [o["id"] for o in cats]
            if not set(map(type, img_ids)) | set(map(type, cat_ids)) <= {int, float, str}:
                return None
            self = cls.__new__(cls)
            self._set_ids(img_ids, cat_ids)
            a_ids = [a["id"] for a in anns]
            ips = list(map(self.img_pos.get, [a["image_id"] for a in anns]))
            cps = list(map(self.cat_pos.get, [a["category_id"] for a in anns]))
            if None in ips or None in cps:
                keep = [i for i, (ip, cp) in enumerate(zip(ips, cps)) if ip is not None and cp is not None]
                anns = [anns[i] for i in keep]
                a_ids, ips, cps = [a_ids[i] for i in keep], [ips[i] for i in keep], [cps[i] for i in keep]
            if not set(map(type, a_ids)) <= num or len(set(a_ids)) != len(a_ids):
                return None
            kp_lists = [a["keypoints"] for a in anns]
            bb_lists = [a["bbox"] for a in anns]
            kp_arr = _flat_numeric_rows(kp_lists, 3 * k, arr)
            box_arr = _flat_numeric_rows(bb_lists, 4, arr)
            if kp_arr is None or box_arr is None:
                return None
            if use_area:
                areas: Any = [a["area"] for a in anns]
                if not set(map(type, areas)) <= num:
                    return None
            else:
                areas = box_arr[:, 3] * box_arr[:, 2] * 0.53  # xtcocotools' order of operations
            crowd = [a.get("iscrowd", 0) for a in anns]
            nkp = [a.get("num_keypoints") for a in anns]
            if not set(map(type, crowd)) <= {int, float, bool, type(None)}:
                return None
            if not set(map(type, nkp)) <= {int, float, type(None)}:
                return None
        except Exception:  # anything unexpected: the careful path decides
            return None
        units = np.asarray(cps, dtype=np.int64) * self.n_img + np.asarray(ips, dtype=np.int64)
        self._finish(units, kp_arr.reshape(-1, k, 3), areas, box_arr, [bool(c) for c in crowd], nkp, a_ids)
        return self


def _unique_keys(o: Any) -> bool:
    """No key repeats in this pysimdjson object (the standard library would keep the last one, pysimdjson
    gives the first)."""
    return len(o) == len(set(o.keys()))


def _flat_numeric_rows(rows: list[Any], width: int, arr_type: type) -> np.ndarray | None:
    """pysimdjson arrays that are each a flat list of ``width`` numbers, as a float64 (n, width) array."""
    if not rows:
        return np.zeros((0, width), dtype=np.float64)
    if set(map(type, rows)) != {arr_type} or set(map(len, rows)) != {width}:
        return None
    # as_buffer flattens nested lists, so prove there are none: one '[' per row in the minified text.
    if b"".join([r.mini for r in rows]).count(b"[") != len(rows):
        return None
    flat = np.frombuffer(b"".join([r.as_buffer(of_type="d") for r in rows]), dtype=np.float64)
    if flat.size != len(rows) * width or not np.isfinite(flat).all():
        return None
    return flat.reshape(len(rows), width)


class _Detections:
    """Kept detections (top ``MAX_DETS`` per image and category) ordered by (unit, rank)."""

    def __init__(
        self,
        units: np.ndarray,
        keep_rows: np.ndarray,
        score_arr: np.ndarray,
        kp_arr: np.ndarray,
        area: np.ndarray | None = None,
    ) -> None:
        """From validated columns: ``kp_arr`` (n, K, 3); ``area`` per result (None: from the keypoint
        extent, as pycocotools' ``loadRes``); ``keep_rows`` False for results in a category the ground
        truth does not list."""
        if not keep_rows.all():
            warnings.warn(
                f"{int((~keep_rows).sum())} results have a category_id not in the ground truth and are not evaluated",
                stacklevel=4,
            )
            idx = np.flatnonzero(keep_rows)
            units, score_arr, kp_arr = units[idx], score_arr[idx], kp_arr[idx]
            area = None if area is None else area[idx]
        # pycocotools: stable sort by -score within each image (file order on ties), keep the top 20.
        order = np.lexsort((np.arange(len(units)), -score_arr, units))
        units = units[order]
        starts = np.searchsorted(units, units, side="left")
        rank = np.arange(len(units)) - starts
        keep = rank < MAX_DETS
        order = order[keep]
        self.unit = units[keep]
        self.rank = rank[keep]
        self.score = score_arr[order]
        self.x = kp_arr[order, :, 0]  # (D, K), contiguous
        self.y = kp_arr[order, :, 1]
        if area is None:  # pycocotools' loadRes: w * h of the extent of all keypoints
            x, y = self.x, self.y
            self.area = (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))
        else:
            self.area = area[order]

    @classmethod
    def from_records(cls, results: Any, gt: _GroundTruth, k: int) -> _Detections:
        """From Python records (in memory or decoded JSON), naming the first malformed one."""
        if not isinstance(results, list):
            raise DataError(
                "results must be a JSON list of objects with image_id, category_id, keypoints, score"
            )
        bbox_area = (
            bool(results)
            and isinstance(results[0], dict)
            and "bbox" in results[0]
            and results[0]["bbox"] != []
        )
        n = len(results)
        units = np.empty(n, dtype=np.int64)
        keep_rows = np.ones(n, dtype=bool)
        scores: list[Any] = [0.0] * n
        kps: list[Any] = [None] * n
        boxes: list[Any] = []
        structural: tuple[int, str] | None = None
        img_pos, cat_pos, n_img, width = gt.img_pos, gt.cat_pos, gt.n_img, 3 * k
        fast = None if bbox_area else _fast_columns(results, img_pos, cat_pos, n_img, width)
        if fast is not None:
            units, keep_rows, scores, kps = fast
        for i, r in enumerate(results if fast is None else ()):
            if not isinstance(r, dict):
                structural = (i, "is not an object")
                break
            try:
                img, cat, kp, s = r["image_id"], r["category_id"], r["keypoints"], r["score"]
            except KeyError as exc:
                structural = (i, f"has no {exc.args[0]!r} field")
                break
            if type(s) is not float and not _is_number(s):
                structural = (i, f"has a non-numeric score {s!r}")
                break
            if type(kp) is not list:
                if isinstance(kp, np.ndarray):  # in-memory results (e.g. from a training loop)
                    kp = kp.reshape(-1)
                elif isinstance(kp, tuple):
                    kp = list(kp)
            if not isinstance(kp, (list, np.ndarray)) or len(kp) != width:
                got = f"{len(kp)} values" if isinstance(kp, (list, np.ndarray)) else type(kp).__name__
                structural = (
                    i,
                    f"has {got} in 'keypoints', expected {width} ({k} keypoints x (x, y, score))",
                )
                break
            try:
                ip = img_pos.get(img)
            except TypeError:
                ip = None
            if ip is None:
                structural = (i, f"has image_id {img!r}, which is not an image of the ground truth")
                break
            try:
                cp = cat_pos.get(cat)
            except TypeError:
                cp = None
            if cp is None:
                keep_rows[i] = False  # pycocotools does not evaluate categories absent from the ground truth
                cp = 0
            if bbox_area:
                bb = r.get("bbox")
                if not isinstance(bb, list) or len(bb) != 4 or not all(_is_number(v) for v in bb):
                    structural = (
                        i,
                        "has no valid 'bbox' [x, y, w, h] (the first result has one, so all need one)",
                    )
                    break
                boxes.append(bb)
            units[i] = cp * n_img + ip
            scores[i] = s
            kps[i] = kp
        m = n if structural is None else structural[0]
        # Content errors (non-numeric or non-finite values) in records before the first structural error.
        kp_arr = _numeric_matrix(kps[:m], width)
        score_arr = np.asarray(scores[:m], dtype=np.float64)
        content: tuple[int, str] | None = None
        if kp_arr is None:
            content = _first_bad_row(kps[:m])
        else:
            bad = ~np.isfinite(kp_arr).all(axis=1) | ~np.isfinite(score_arr)
            if bbox_area:
                bad |= ~np.isfinite(np.asarray(boxes[:m], dtype=np.float64).reshape(-1, 4)).all(axis=1)
            if bad.any():
                j = int(np.argmax(bad))
                content = (j, "contains NaN or infinite values (keypoints, score or bbox)")
        if kp_arr is None and content is None:
            content = (0, "has keypoints that cannot be read as numbers")
        err = content if content is not None else structural
        if err is not None:
            i, msg = err
            rec = results[i]
            desc = ""
            if isinstance(rec, dict):
                desc = (
                    " (" + ", ".join(f"{f}={rec[f]!r}" for f in ("image_id", "category_id") if f in rec) + ")"
                )
            raise DataError(f"results[{i}]{desc} {msg}")
        assert kp_arr is not None
        kp_arr = kp_arr.reshape(n, k, 3)
        area = None
        if bbox_area:
            box_arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            area = box_arr[:, 2] * box_arr[:, 3]
        return cls(units, keep_rows, score_arr, kp_arr, area)

    @staticmethod
    def columns_from_file(src: _JsonFile, parser: Any, k: int) -> tuple[Any, ...] | None:
        """The columns of a results file through pysimdjson, or None if anything is unusual.

        Keypoint lists become one array without Python floats. Anything this path does not prove
        well-formed (a missing field, a non-numeric score, a nested list, an extra list anywhere, a
        repeated key, ...) returns None, and the careful per-record path names the problem on the fully
        decoded file. Where both accept the input they give identical arrays. Returns
        ``(image_ids, category_ids, scores, kp_arr (n, K, 3), boxes (n, 4) or None)``; no pysimdjson
        object outlives the call, so the parser can be reused.

        Large files are parsed in pieces of whole records (see :meth:`_JsonFile.pieces`) with one
        parser, which keeps its buffers small and reused.
        """
        if parser is None:
            return None
        import simdjson

        width = 3 * k
        n_lists = _count_byte(src.data, b"[")  # one per keypoint list (and box) plus the outer list
        imgs: list[Any] = []
        cats: list[Any] = []
        scores: list[Any] = []
        flat = box_flat = None
        with_box = None
        for piece in src.pieces():
            try:
                doc = parser.parse(piece)
            except Exception:
                return None
            if flat is None:  # sized from the list count: no nested or other lists anywhere (checked below)
                if not isinstance(doc, simdjson.Array) or n_lists < 1:
                    return None  # not a list of records: the careful path names the problem
                try:
                    first = doc[0]
                    with_box = isinstance(first, simdjson.Object) and "bbox" in first
                    del first
                except Exception:
                    return None
                n_all = (n_lists - 1) // (2 if with_box else 1)
                flat = np.empty(n_all * width, dtype=np.float64)
                box_flat = np.empty(n_all * 4, dtype=np.float64) if with_box else None
            m = len(imgs)
            got = _Detections._piece_columns(doc, width, bool(with_box), flat, box_flat, m)
            del doc
            if got is None:
                return None
            imgs += got[0]
            cats += got[1]
            scores += got[2]
        n = len(imgs)
        if n == 0 or n_lists != 1 + n * (2 if with_box else 1) or flat is None:
            return None
        if not set(map(type, scores)) <= {int, float}:
            return None
        score_arr = np.array(scores, dtype=np.float64)
        if not (np.isfinite(flat).all() and np.isfinite(score_arr).all()):
            return None
        box_arr = None
        if box_flat is not None:
            box_arr = box_flat.reshape(n, 4)
            if not np.isfinite(box_arr).all():
                return None
        return imgs, cats, score_arr, flat.reshape(n, k, 3), box_arr

    @staticmethod
    def _piece_columns(
        doc: Any, width: int, with_box: bool, flat: np.ndarray, box_flat: np.ndarray | None, m: int
    ) -> tuple[Any, ...] | None:
        """Columns of one parsed piece (a JSON list of result objects) whose records start at index ``m``;
        keypoints (and boxes) are written into ``flat`` (``box_flat``). None if anything is unusual."""
        import simdjson

        try:
            if not isinstance(doc, simdjson.Array) or len(doc) == 0:
                return None
            recs = list(doc)
            n = len(recs)
            if (m + n) * width > flat.size:
                return None
            kps = [r["keypoints"] for r in recs]
            scores = [r["score"] for r in recs]
            imgs = [r["image_id"] for r in recs]
            cats = [r["category_id"] for r in recs]
            if set(map(len, recs)) != {5 if with_box else 4} and not all(map(_unique_keys, recs)):
                return None
            if set(map(type, kps)) != {simdjson.Array} or set(map(len, kps)) != {width}:
                return None
            if _join_buffers(kps, width, flat[m * width : (m + n) * width]) is None:
                return None
            if box_flat is not None:
                boxes = [r["bbox"] for r in recs]
                if set(map(type, boxes)) != {simdjson.Array} or set(map(len, boxes)) != {4}:
                    return None
                if _join_buffers(boxes, 4, box_flat[m * 4 : (m + n) * 4]) is None:
                    return None
        except Exception:  # anything unexpected: the careful path decides
            return None
        return imgs, cats, scores

    @classmethod
    def from_columns(cls, columns: tuple[Any, ...], gt: _GroundTruth) -> _Detections | None:
        """Detections from :meth:`columns_from_file`; None if an image id is not in the ground truth
        (the careful path then names the record)."""
        imgs, cats, score_arr, kp_arr, box_arr = columns
        try:
            ips = list(map(gt.img_pos.get, imgs))
            cps = list(map(gt.cat_pos.get, cats))
        except TypeError:  # unhashable ids
            return None
        if None in ips:
            return None
        n = len(ips)
        if None in cps:
            keep_rows = np.fromiter((c is not None for c in cps), dtype=bool, count=n)
            cps = [0 if c is None else c for c in cps]
        else:
            keep_rows = np.ones(n, dtype=bool)
        cp_arr = np.array(cps, dtype=np.int64)
        units = cp_arr * gt.n_img + np.array(ips, dtype=np.int64)
        area = None if box_arr is None else box_arr[:, 2] * box_arr[:, 3]
        return cls(units, keep_rows, score_arr, kp_arr, area)


def _join_buffers(
    arrays: list[Any], width: int, out: np.ndarray | None = None, group: int = 4096
) -> np.ndarray | None:
    """The numbers of ``len(arrays)`` pysimdjson arrays of ``width`` numbers each as one flat float64 array
    (written into ``out`` when given), or None if the count is off. Built group by group so that the
    temporary bytes stay small (fewer fresh memory pages than joining everything at once)."""
    n = len(arrays)
    if out is None:
        out = np.empty(n * width, dtype=np.float64)
    elif out.size != n * width:
        return None
    step = group * width
    for i in range(0, n, group):
        chunk = b"".join([a.as_buffer(of_type="d") for a in arrays[i : i + group]])
        part = out[i * width : i * width + step]
        if len(chunk) != part.nbytes:
            return None
        part[:] = np.frombuffer(chunk, dtype=np.float64)
    return out


def _count_byte(data: Any, byte: bytes, chunk: int = 1 << 20) -> int:
    """How often ``byte`` occurs in ``data`` (numpy over cache-sized chunks: faster than bytes.count)."""
    u = np.frombuffer(data, dtype=np.uint8)
    b = ord(byte)
    return sum(int(np.count_nonzero(u[i : i + chunk] == b)) for i in range(0, len(u), chunk))


def _fast_columns(
    results: list[Any], img_pos: dict[Any, int], cat_pos: dict[Any, int], n_img: int, width: int
) -> tuple[np.ndarray, np.ndarray, list[Any], list[Any]] | None:
    """Columns of well-formed results with C-level iteration only; None if anything looks off.

    The careful per-record loop then runs instead and names the first offending record.
    """
    try:
        imgs = [r["image_id"] for r in results]
        cats = [r["category_id"] for r in results]
        kps = [r["keypoints"] for r in results]
        scores = [r["score"] for r in results]
        if not set(map(type, scores)) <= {float, int} or set(map(type, kps)) - {list}:
            return None
        if set(map(len, kps)) - {width}:
            return None
        ips = list(map(img_pos.get, imgs))
        cps = list(map(cat_pos.get, cats))
    except (KeyError, TypeError):
        return None
    if None in ips:
        return None
    keep_rows = np.fromiter((c is not None for c in cps), dtype=bool, count=len(cps))
    cp_arr = np.array([0 if c is None else c for c in cps] if not keep_rows.all() else cps, dtype=np.int64)
    units = cp_arr * n_img + np.array(ips, dtype=np.int64)
    return units.reshape(-1), keep_rows, scores, kps


def _oks_pairs(
    gt: _GroundTruth, dt: _Detections, pair_gt: np.ndarray, pair_dt: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """OKS of each (detection, person) pair, computed with pycocotools' exact floating-point operations.

    The per-keypoint terms are elementwise, so they are computed in the natural keypoint order. Only
    the sum depends on the order: pycocotools sums ``np.exp(-e[vg > 0])``, the person's labelled
    keypoints in order, with numpy's summation. Pairs are grouped by that count so that each group
    sums rows of exactly those terms (gathered labelled-first) with the same numpy reduction, and the
    results are identical to the last bit.
    """
    k = len(sigmas)
    var = (sigmas * 2) ** 2
    n = len(pair_gt)
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    vis_all = gt.kpts[:, :, 2] > 0
    k1_all = np.count_nonzero(vis_all, axis=1)
    nov_all = k1_all == 0
    labelled_first = np.argsort(~vis_all, axis=1, kind="stable")  # per person: labelled keypoints, in order
    scale_all = gt.area + _EPS
    gx, gy = np.ascontiguousarray(gt.kpts[:, :, 0]), np.ascontiguousarray(gt.kpts[:, :, 1])
    b = gt.bbox
    x0_all, x1_all = b[:, 0] - b[:, 2], b[:, 0] + b[:, 2] * 2
    y0_all, y1_all = b[:, 1] - b[:, 3], b[:, 1] + b[:, 3] * 2
    # Work in the order of the labelled count (persons without labels last), so that each group is a
    # contiguous block: no masks, no gathers of the terms.
    group_of = np.where(nov_all, k + 1, k1_all)
    order = np.argsort(group_of[pair_gt], kind="stable")
    pg, pd = pair_gt[order], pair_dt[order]
    bounds = np.concatenate(([0], np.cumsum(np.bincount(group_of[pg], minlength=k + 2))))
    nov_from = bounds[k + 1]
    ex = np.empty((n, k), dtype=np.float64)
    for s in range(0, n, _PAIR_CHUNK):
        e_ = min(s + _PAIR_CHUNK, n)
        g, d = pg[s:e_], pd[s:e_]
        xd, yd = dt.x[d], dt.y[d]
        m = max(0, min(nov_from, e_) - s)  # rows [0, m) have labelled keypoints, [m, ...) have none
        dx = np.empty_like(xd)
        dy = np.empty_like(yd)
        np.subtract(xd[:m], gx[g[:m]], out=dx[:m])
        np.subtract(yd[:m], gy[g[:m]], out=dy[:m])
        if m < len(g):  # persons without labelled keypoints: distance to the doubled box
            gn, xdn, ydn = g[m:], xd[m:], yd[m:]
            z = np.zeros_like(xdn)
            dx[m:] = np.maximum(z, x0_all[gn][:, None] - xdn) + np.maximum(z, xdn - x1_all[gn][:, None])
            dy[m:] = np.maximum(z, y0_all[gn][:, None] - ydn) + np.maximum(z, ydn - y1_all[gn][:, None])
        # e = (dx**2 + dy**2) / vars / (area + eps) / 2, in place, same operations and order
        ee = np.square(dx, out=dx)
        ee += np.square(dy, out=dy)
        ee /= var
        ee /= scale_all[g][:, None]
        ee /= 2
        np.exp(np.negative(ee, out=ee), out=ex[s:e_])
    # Sum each pair's terms over its person's labelled keypoints (all K without labels), group by group.
    for kk in range(1, k + 2):
        lo, hi = bounds[kk], bounds[kk + 1]
        if lo == hi:
            continue
        if kk >= k:  # every keypoint counts (all labelled, or none): the natural order is pycocotools'
            terms = ex[lo:hi]
        else:
            terms = np.take_along_axis(ex[lo:hi], labelled_first[pg[lo:hi], :kk], axis=1)
        out[order[lo:hi]] = terms.sum(axis=1) / min(kk, k)
    return out


def _oks_upper_bound_keep(
    gt: _GroundTruth, dt: _Detections, pair_gt: np.ndarray, pair_dt: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """Pairs that may reach OKS 0.5, judged from the gap between boxes around the keypoints.

    Every keypoint distance pycocotools uses is at least the gap ``D`` between the box of the
    detection's keypoints and the box of the person's labelled keypoints (or, for a person without
    labels, its doubled ``bbox``), so ``OKS <= exp(-D^2 / max(vars) / (area + eps) / 2)``. A pair is
    dropped only if that bound is below 0.495 (a 1 % margin over 0.5, far above rounding error):
    ``D^2 > -ln(0.495) * 2 * max(vars) * (area + eps)``. Persons with a non-positive scale are kept.
    """
    vis = gt.kpts[:, :, 2] > 0
    has = vis.any(axis=1)
    big = np.inf
    gx0 = np.where(vis, gt.kpts[:, :, 0], big).min(axis=1)
    gx1 = np.where(vis, gt.kpts[:, :, 0], -big).max(axis=1)
    gy0 = np.where(vis, gt.kpts[:, :, 1], big).min(axis=1)
    gy1 = np.where(vis, gt.kpts[:, :, 1], -big).max(axis=1)
    b = gt.bbox
    gx0 = np.where(has, gx0, b[:, 0] - b[:, 2])
    gx1 = np.where(has, gx1, b[:, 0] + b[:, 2] * 2)
    gy0 = np.where(has, gy0, b[:, 1] - b[:, 3])
    gy1 = np.where(has, gy1, b[:, 1] + b[:, 3] * 2)
    x, y = dt.x, dt.y
    dx0, dx1, dy0, dy1 = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
    var_max = float(((sigmas * 2) ** 2).max())
    scale = gt.area + _EPS
    limit = np.where(scale > 0, -np.log(0.495) * 2 * var_max * scale, np.inf)
    g, d = pair_gt, pair_dt
    gap_x = np.maximum(0.0, np.maximum(gx0[g] - dx1[d], dx0[d] - gx1[g]))
    gap_y = np.maximum(0.0, np.maximum(gy0[g] - dy1[d], dy0[d] - gy1[g]))
    gap_x *= gap_x
    gap_y *= gap_y
    gap_x += gap_y
    return ~(gap_x > limit[g])  # NaN gaps are kept (the exact OKS is then NaN and never matches)


def _evaluate_arrays(gt: _GroundTruth, dt: _Detections, sigmas: np.ndarray) -> dict[str, float]:
    n_areas, n_thr, n_rec = len(AREA_RANGES), len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    n_units, n_cat = gt.n_units, len(gt.cat_ids)
    n_gt, n_dt = len(gt.unit), len(dt.unit)

    gt_count = np.bincount(gt.unit, minlength=n_units)
    gt_start = np.concatenate(([0], np.cumsum(gt_count)[:-1]))
    # Per-area "_ignore" of each person, and per-area "outside the range" of each detection.
    lo = np.array([a[0] for a in AREA_RANGES])[:, None]
    hi = np.array([a[1] for a in AREA_RANGES])[:, None]
    gt_ig = gt.ignore[None, :] | (gt.area[None, :] < lo) | (gt.area[None, :] > hi)  # (A, G)
    dt_out = (dt.area[None, :] < lo) | (dt.area[None, :] > hi)  # (A, D)

    # All (detection, person) pairs of the same image and category, ordered by (rank, unit, person).
    ng = gt_count[dt.unit]
    pair_dt = np.repeat(np.arange(n_dt), ng)
    pair_gt = np.arange(len(pair_dt)) - np.repeat(np.cumsum(ng) - ng, ng) + np.repeat(gt_start[dt.unit], ng)
    pair_rank = dt.rank[pair_dt]
    porder = np.argsort(pair_rank, kind="stable")  # dets are sorted by (unit, rank): keeps unit order
    pair_dt, pair_gt, pair_rank = pair_dt[porder], pair_gt[porder], pair_rank[porder]
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, :, None]
    # A pair whose OKS is below the lowest threshold can never match: leave it out. First a cheap
    # upper bound from the boxes around the keypoints skips most far-apart pairs, then exact OKS.
    maybe = _oks_upper_bound_keep(gt, dt, pair_gt, pair_dt, sigmas)
    pair_dt, pair_gt, pair_rank = pair_dt[maybe], pair_gt[maybe], pair_rank[maybe]
    oks = _oks_pairs(gt, dt, pair_gt, pair_dt, sigmas)
    useful = oks >= thr.min()
    pair_dt, pair_gt, pair_rank, oks = pair_dt[useful], pair_gt[useful], pair_rank[useful], oks[useful]

    matched_gt = np.zeros((n_areas, n_thr, n_gt), dtype=bool)
    dt_match = np.zeros((n_areas, n_thr, n_dt), dtype=bool)  # matched to a person with a non-zero id
    dt_ig = np.zeros((n_areas, n_thr, n_dt), dtype=bool)
    # One integer key per (area, pair) orders candidates exactly as pycocotools' greedy loop prefers
    # them: any regular person before any ignored one, then by OKS (dense rank: exact ties stay ties).
    n_pairs = len(oks)
    by_oks = np.argsort(oks, kind="stable")
    oks_sorted = oks[by_oks]
    dense = np.empty(n_pairs, dtype=np.int64)
    dense[by_oks] = np.cumsum(np.concatenate(([False], oks_sorted[1:] != oks_sorted[:-1])))
    key_base = dense[None, :] + np.where(gt_ig[:, pair_gt], 0, np.int64(1) << 40)  # (A, P)
    over_thr = oks[None, :] >= thr[0]  # (T, P)
    pair_crowd = gt.crowd[pair_gt]
    # Pairs are ordered by (rank, detection, person): each detection's pairs form one segment.
    new_seg = np.ones(n_pairs, dtype=bool)
    new_seg[1:] = pair_dt[1:] != pair_dt[:-1]
    seg_start_all = np.flatnonzero(new_seg)
    seg_id_all = np.cumsum(new_seg) - 1
    rank_bounds = np.searchsorted(pair_rank, np.arange(MAX_DETS + 1))
    seg_bounds = np.searchsorted(seg_start_all, rank_bounds)
    flat_base = (np.arange(n_areas * n_thr) * n_gt).reshape(n_areas, n_thr, 1)
    matched_flat = matched_gt.reshape(-1)
    a_idx = np.arange(n_areas)[:, None, None]
    for r in range(MAX_DETS):
        lo_r, hi_r = rank_bounds[r], rank_bounds[r + 1]
        if lo_r == hi_r:
            continue
        s_lo, s_hi = seg_bounds[r], seg_bounds[r + 1]
        g = pair_gt[lo_r:hi_r]
        seg_starts = seg_start_all[s_lo:s_hi] - lo_r
        seg_ids = seg_id_all[lo_r:hi_r] - s_lo
        seg_dt = pair_dt[seg_start_all[s_lo:s_hi]]
        taken = matched_gt[:, :, g]  # (A, T, P): person already matched at this area and threshold
        crowd = pair_crowd[lo_r:hi_r]
        if crowd.any():
            taken &= ~crowd  # crowd persons take any number of detections
        cand = over_thr[:, lo_r:hi_r] & ~taken
        key = np.where(cand, key_base[:, None, lo_r:hi_r], -1)
        best = np.maximum.reduceat(key, seg_starts, axis=-1)  # (A, T, S)
        hit = best >= 0
        is_best = key == best[..., seg_ids]
        is_best &= cand
        pos = np.where(is_best, np.arange(hi_r - lo_r), -1)
        last = np.maximum.reduceat(pos, seg_starts, axis=-1)  # the last best on exact ties
        mg = g[np.where(hit, last, 0)]  # (A, T, S) person index
        matched_flat[(flat_base + mg)[hit]] = True
        dt_match[:, :, seg_dt] = hit & gt.id_nonzero[mg]
        dt_ig[:, :, seg_dt] = hit & gt_ig[a_idx, mg]
    dt_ig |= ~dt_match & dt_out[:, None, :]

    precision = -np.ones((n_thr, n_rec, n_cat, n_areas, 1))
    recall = -np.ones((n_thr, n_cat, n_areas, 1))
    unit_cat = np.arange(n_units) // gt.n_img
    has_gt_or_dt = (gt_count > 0) | (np.bincount(dt.unit, minlength=n_units) > 0)
    gt_cat = unit_cat[gt.unit]
    dt_cat = unit_cat[dt.unit]
    for c in range(n_cat):
        if not has_gt_or_dt[unit_cat == c].any():
            continue
        npig = np.count_nonzero(~gt_ig[:, gt_cat == c], axis=1)  # (A,) non-ignored persons per area
        areas = np.flatnonzero(npig > 0)
        if not len(areas):
            continue
        sel = np.flatnonzero(dt_cat == c)
        # Global stable order: score, then image (units are image-ordered within a category), then rank.
        sel = sel[np.lexsort((dt.rank[sel], dt.unit[sel], -dt.score[sel]))]
        nd = len(sel)
        if nd == 0:
            recall[:, c, areas, 0] = 0
            precision[:, :, c, areas, 0] = 0
            continue
        # One area at a time (T, nd): small temporaries that the allocator reuses. The cumulative sums
        # count integers, so they equal pycocotools' integer cumsums cast to float; fp + tp is the
        # running count of non-ignored detections.
        # A detection ignored at every threshold (e.g. outside the area range and unmatched) only
        # repeats the previous recall and precision, so it never changes an interpolated precision
        # (the first position reaching a recall level is never such a repeat) nor the final recall:
        # it is left out. With none left, recall and precision are 0, as pycocotools gives then.
        for a in areas:
            keep = ~dt_ig[a][:, sel]
            live = keep.any(axis=0)
            if not live.all():
                keep = keep[:, live]
                sel_a = sel[live]
            else:
                sel_a = sel
            nd_a = len(sel_a)
            if nd_a == 0:
                recall[:, c, a, 0] = 0
                precision[:, :, c, a, 0] = 0
                continue
            match = dt_match[a][:, sel_a]
            tp = np.cumsum(match & keep, axis=1, dtype=np.int32)
            tp_fp = np.cumsum(keep, axis=1, dtype=np.int32)
            rc = tp / npig[a]
            pr = tp / (tp_fp + _EPS)
            recall[:, c, a, 0] = rc[:, -1]
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # pycocotools' backward max pass
            for t in range(n_thr):
                inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                precision[t, :, c, a, 0] = np.where(inds < nd_a, pr[t][np.minimum(inds, nd_a - 1)], 0.0)
    return _summarize(precision, recall)


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The ten keypoint stats, averaged exactly as pycocotools' ``summarize`` does."""

    def one(ap: bool, iou: float | None = None, area: str = "all") -> float:
        aind = [AREA_LABELS.index(area)]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        s = s[:, :, :, aind, [0]] if ap else s[:, :, aind, [0]]
        valid = s[s > -1]
        return -1.0 if len(valid) == 0 else float(np.mean(valid))

    vals = [
        one(True), one(True, 0.5), one(True, 0.75), one(True, area="medium"), one(True, area="large"),
        one(False), one(False, 0.5), one(False, 0.75), one(False, area="medium"), one(False, area="large"),
    ]  # fmt: skip
    return dict(zip(STAT_KEYS, vals))


def coco_keypoint_eval(
    gt: dict[str, Any] | str | os.PathLike[str],
    results: list[dict[str, Any]] | str | os.PathLike[str],
    sigmas: Sequence[float] | np.ndarray | None = None,
    use_area: bool = True,
) -> dict[str, float]:
    """COCO keypoint AP/AR of ``results`` against ``gt``, identical to pycocotools' ``COCOeval``.

    Args:
        gt: COCO keypoint annotations (dict, path to the JSON file, or a pycocotools ``COCO``).
        results: COCO keypoint results, a list of ``{"image_id", "category_id", "keypoints": [x, y, s]*K,
            "score"}`` (or a path to such a JSON list); keypoints may also be numpy arrays.
        sigmas: per-keypoint OKS sigmas (K of them); default COCO's 17.
        use_area: scale OKS by the annotation ``area`` (COCO); ``False`` uses ``bbox_w * bbox_h * 0.53``
            for the scale and the area ranges (CrowdPose / xtcocotools ``use_area=False``).

    Returns:
        ``{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"}`` as floats; -1 where
        pycocotools reports -1 (no non-ignored person in that area range).

    Raises:
        DataError: unreadable files or malformed records (the first bad result is named with its index).
    """
    sig = default_sigmas() if sigmas is None else np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise DataError("OKS sigmas must be positive finite numbers, one per keypoint")
    if hasattr(gt, "dataset") and isinstance(getattr(gt, "dataset", None), dict):
        gt = gt.dataset  # a pycocotools COCO object
    gt_src = _load_json(gt, "ground-truth annotation")
    res_src = _load_json(results, "results")
    # Fast path first (files through pysimdjson); the careful path on decoded objects names any problem.
    # The ground truth first, then the results in pieces of whole records, all with one parser, whose
    # buffers are thus allocated once.
    parser = _simdjson_parser()
    g = None
    if isinstance(gt_src, _JsonFile):
        g = _GroundTruth.from_document(gt_src.document(parser), sig, use_area)
        if g is None:
            gt_src = gt_src.decode()
    if g is None:
        g = _GroundTruth(gt_src, sig, use_area)
    d = None
    if isinstance(res_src, _JsonFile):
        res_cols = _Detections.columns_from_file(res_src, parser, len(sig))
        d = None if res_cols is None else _Detections.from_columns(res_cols, g)
        if d is None:
            res_src = res_src.decode()
    if d is None:
        if isinstance(res_src, list) and len(res_src) == 0:
            warnings.warn(
                "the result list is empty: reporting the stats of no detections (pycocotools would crash)",
                stacklevel=2,
            )
        d = _Detections.from_records(res_src, g, len(sig))
    return _evaluate_arrays(g, d, sig)


def format_stats(stats: dict[str, float]) -> str:
    """The ten-line summary table in pycocotools' format."""
    rows = [
        ("Average Precision", "(AP)", None, "all"), ("Average Precision", "(AP)", 0.5, "all"),
        ("Average Precision", "(AP)", 0.75, "all"), ("Average Precision", "(AP)", None, "medium"),
        ("Average Precision", "(AP)", None, "large"), ("Average Recall", "(AR)", None, "all"),
        ("Average Recall", "(AR)", 0.5, "all"), ("Average Recall", "(AR)", 0.75, "all"),
        ("Average Recall", "(AR)", None, "medium"), ("Average Recall", "(AR)", None, "large"),
    ]  # fmt: skip
    lines = []
    for key, (title, typ, iou, area) in zip(STAT_KEYS, rows):
        iou_s = f"{IOU_THRESHOLDS[0]:0.2f}:{IOU_THRESHOLDS[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
        lines.append(
            f" {title:<18} {typ} @[ IoU={iou_s:<9} | area={area:>6s} | maxDets={MAX_DETS:>3d} ] = {stats[key]:0.3f}"
        )
    return "\n".join(lines)
