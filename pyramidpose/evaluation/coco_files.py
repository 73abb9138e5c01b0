"""Reading COCO keypoint files for evaluation: ground truth, results and OKS sigmas.

:class:`GroundTruth` and :class:`Detections` turn the annotation file and the results into the
arrays :mod:`pyramidpose.evaluation.coco_eval` matches and accumulates. Files are memory-mapped and
decoded lazily by pysimdjson (only the needed fields; keypoint lists straight into arrays; the
results file in :data:`PIECE_BYTES` pieces of whole records), with a careful per-record path on the
standard library's decoding for anything unusual: it names the first bad record
(:class:`~pyramidpose.errors.DataError`). No Python loop runs over records on the fast path.
Pure numpy (no torch).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.errors import DataError

#: Detections kept per image (pycocotools' ``maxDets`` for keypoints).
MAX_DETS = 20
PIECE_BYTES = 2 << 20  # results files are parsed in pieces of about this size (see JsonFile.pieces)


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


class JsonFile:
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
        ``PIECE_BYTES``); one piece (the whole text) if it is small or no cut is found.

        A cut made anywhere else (inside a string or a nested value) leaves a piece that is not valid
        JSON, so when every piece parses, the pieces hold exactly the objects of the whole list. The
        caller treats a piece that does not parse like a file that does not.
        """
        data = self.data
        total = len(data)
        size = size or PIECE_BYTES
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


def simdjson_parser() -> Any:
    """A pysimdjson parser to share between the two files, or None without pysimdjson."""
    try:
        import simdjson
    except ImportError:
        return None
    return simdjson.Parser()


def load_json(obj: Any, what: str) -> Any:
    """A path becomes a :class:`JsonFile`; anything else (already loaded data) is returned as it is."""
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        try:
            return JsonFile(path, _read_file(path), what)
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


class GroundTruth:
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
    def from_document(cls, doc: Any, sigmas: np.ndarray, use_area: bool) -> GroundTruth | None:
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


class Detections:
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
    def from_records(cls, results: Any, gt: GroundTruth, k: int) -> Detections:
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
    def columns_from_file(src: JsonFile, parser: Any, k: int) -> tuple[Any, ...] | None:
        """The columns of a results file through pysimdjson, or None if anything is unusual.

        Keypoint lists become one array without Python floats. Anything this path does not prove
        well-formed (a missing field, a non-numeric score, a nested list, an extra list anywhere, a
        repeated key, ...) returns None, and the careful per-record path names the problem on the fully
        decoded file. Where both accept the input they give identical arrays. Returns
        ``(image_ids, category_ids, scores, kp_arr (n, K, 3), boxes (n, 4) or None)``; no pysimdjson
        object outlives the call, so the parser can be reused.

        Large files are parsed in pieces of whole records (see :meth:`JsonFile.pieces`) with one
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
            got = Detections._piece_columns(doc, width, bool(with_box), flat, box_flat, m)
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
    def from_columns(cls, columns: tuple[Any, ...], gt: GroundTruth) -> Detections | None:
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
