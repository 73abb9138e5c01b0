"""COCO-format top-down keypoint dataset for training and validation.

One item is one person box. Training uses the ground-truth boxes of non-crowd persons with at least
one labelled keypoint; validation uses the same ground-truth boxes or the person boxes of a COCO
detection-results file. Any keypoint layout of :mod:`pyramidpose.skeletons` works: the number of
keypoints, the flip pairs and the upper body come from the :class:`~pyramidpose.skeletons.KeypointSet`.

Images are decoded in ``__getitem__`` (so in the DataLoader workers). Augmentation randomness comes
from a per-item seed handed over by :class:`ResumableDistributedSampler`, never from the worker's
global random state: the same (seed, epoch, position) always gives the same crop, whatever the number
of workers or processes, which makes resumed and distributed runs reproduce single-process runs.

Bad input is skipped and counted, never fatal: annotations whose keypoints are malformed or fall
outside their image are dropped when the file is read (:attr:`CocoKeypointDataset.skipped`); an image
that cannot be decoded yields a sample flagged ``valid=False`` with zero target weights (so it adds
nothing to the loss) and is reported by the training loop at the end of the epoch.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.codecs.heatmap import HeatmapCodec
from pyramidpose.data.boxes import load_box_file, mmpose_gt_box
from pyramidpose.data.images import read_image
from pyramidpose.data.transforms import flip_keypoints, half_body_box, normalize_crops, random_scale_rotation
from pyramidpose.errors import DataError
from pyramidpose.geometry.crops import box_to_center_scale
from pyramidpose.skeletons import KeypointSet, get_keypoint_set


@dataclass
class Instance:
    """One person box of the dataset.

    ``bbox`` is COCO ``[x, y, w, h]`` in pixels; ``keypoints`` is ``[K, 3]`` (x, y, visibility) for
    ground truth and ``None`` for detections; ``score`` is 1 for ground truth.
    """

    image_id: int
    image_path: str
    bbox: np.ndarray
    keypoints: np.ndarray | None
    score: float = 1.0
    ann_id: int = -1


def read_json(path: Path, what: str) -> Any:
    """Load a JSON file, raising :class:`DataError` naming the file when it is missing or invalid."""
    from pyramidpose.utils.jsonio import read_json as read_untrusted

    return read_untrusted(path, what)


_RECORD_ERRORS = (KeyError, TypeError, ValueError, OverflowError, AttributeError)


def _record_error(path: Path, where: str, exc: Exception) -> DataError:
    """A DataError naming the file, the record and (for a missing key) the field."""
    what = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
    return DataError(f"{path}: {where} is malformed ({what}); fix or remove that record.")


def _int_id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{field} is {type(value).__name__}, expected an integer")
    return int(value)


def _image_table(coco: dict[str, Any], path: Path) -> dict[int, dict[str, Any]]:
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise DataError(f"{path} is not a COCO annotation file (no 'images' list)")
    table = {}
    for i, im in enumerate(coco["images"]):
        try:
            if not isinstance(im, dict):
                raise TypeError(f"the record is a {type(im).__name__}, expected an object")
            if not isinstance(im["file_name"], str):
                raise TypeError(f"file_name is {type(im['file_name']).__name__}, expected a string")
            for key in ("width", "height"):
                v = im.get(key, 0)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ValueError(f"{key} is {v!r}, expected a finite number")
            table[_int_id(im["id"], "id")] = im
        except _RECORD_ERRORS as e:
            raise _record_error(path, f"images[{i}]", e) from None
    return table


def load_gt_instances(
    ann_file: Path, image_dir: Path, kpt_set: KeypointSet
) -> tuple[list[Instance], Counter[str]]:
    """Non-crowd annotations with at least one labelled keypoint, and counts of skipped ones."""
    coco = read_json(ann_file, "annotation file")
    images = _image_table(coco, ann_file)
    k = kpt_set.num_keypoints
    skipped: Counter[str] = Counter()
    out: list[Instance] = []
    anns = coco.get("annotations", [])
    if not isinstance(anns, list):
        raise DataError(f"{ann_file}: 'annotations' is {type(anns).__name__}, expected a list")
    for i, ann in enumerate(anns):
        try:
            inst = _gt_instance(ann, images, image_dir, k, kpt_set.name, skipped)
        except _RECORD_ERRORS as e:
            raise _record_error(ann_file, f"annotations[{i}]", e) from None
        if inst is not None:
            out.append(inst)
    return out, skipped


def _gt_instance(ann: Any, images: dict, image_dir: Path, k: int, set_name: str, skipped: Counter[str]) -> Instance | None:
    """One annotation as an Instance, or None (skipped, counted in ``skipped``); raises on malformed fields."""
    if not isinstance(ann, dict):
        raise TypeError(f"the record is a {type(ann).__name__}, expected an object")
    if ann.get("iscrowd", 0):
        return None
    raw = ann.get("keypoints")
    if raw is None:
        return None
    im = images.get(_int_id(ann.get("image_id", -1), "image_id"))
    if im is None:
        skipped["annotation of an unknown image"] += 1
        return None
    kp = np.asarray(raw, dtype=np.float64)
    if kp.size != 3 * k:
        skipped[f"keypoint count is not {k} ({set_name})"] += 1
        return None
    kp = kp.reshape(k, 3)
    labelled = kp[:, 2] > 0
    if not labelled.any():
        return None
    w, h = float(im.get("width", 0)), float(im.get("height", 0))
    pts = kp[labelled, :2]
    if (
        not np.isfinite(kp).all()
        or (pts < -1).any()
        or (w > 0 and (pts[:, 0] > w + 1).any())
        or (h > 0 and (pts[:, 1] > h + 1).any())
    ):
        skipped["keypoints outside the image"] += 1
        return None
    box = mmpose_gt_box(ann.get("bbox", ()), w, h)
    if box is None:
        skipped["empty or malformed box"] += 1
        return None
    return Instance(
        image_id=int(im["id"]),
        image_path=str(image_dir / im["file_name"]),
        bbox=box,
        keypoints=kp.astype(np.float32),
        ann_id=_int_id(ann.get("id", -1), "id"),
    )


def load_detection_instances(
    det_file: Path, ann_file: Path, image_dir: Path, score_thr: float = 0.0
) -> tuple[list[Instance], Counter[str]]:
    """Person boxes of a COCO detection-results file (read by :func:`~pyramidpose.data.boxes.load_box_file`,
    scores ``>= score_thr``) for the images of ``ann_file``, in image-table order. Boxes are used as
    they are (MMPose does not sanitise detections); the predictor clips them to the image."""
    images = _image_table(read_json(ann_file, "annotation file"), ann_file)
    boxes = load_box_file(det_file, det_thr=score_thr, images=images)
    skipped: Counter[str] = Counter()
    for iid in boxes.boxes:
        if iid not in images:
            skipped["detection of an unknown image"] += len(boxes.boxes[iid])
    out = []
    for iid, im in images.items():
        b, s = boxes.get(iid)
        path = str(image_dir / im["file_name"])
        out.extend(Instance(int(iid), path, box, None, float(score)) for box, score in zip(b, s))
    return out, skipped


def _sampler_base() -> type:
    from torch.utils.data import DistributedSampler

    return DistributedSampler


class ResumableDistributedSampler(_sampler_base()):  # type: ignore[misc]
    """torch's :class:`~torch.utils.data.DistributedSampler` that can start mid-epoch and hands out
    per-item augmentation seeds.

    Every epoch shuffles ``range(len(dataset))`` with ``seed + epoch`` and pads it (cyclically) to a
    multiple of ``batch_size * world_size * accumulate``. Rank ``r`` takes positions ``r, r + W,
    r + 2W, ...`` exactly as torch's sampler does, so the k-th batches of all ranks together are the
    positions ``[k*b*W, (k+1)*b*W)``: the same images a single process sees with batch ``b*W``. Each
    item is ``(index, (seed, epoch, position))``; the dataset derives its augmentation from that
    triple. ``repeat`` visits the dataset that many times per epoch (small datasets).
    :meth:`set_start` skips the first batches of the epoch (resuming mid-epoch).
    """

    def __init__(
        self,
        dataset_len: int,
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        accumulate: int = 1,
        repeat: int = 1,
    ) -> None:
        if dataset_len < 1:
            raise DataError("the training set is empty (no person with labelled keypoints)")
        self.dataset_len = dataset_len
        self.repeat = max(1, int(repeat))
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.batch_size = batch_size
        group = batch_size * num_replicas * accumulate
        self.total_size = max(1, math.ceil(dataset_len * self.repeat / group)) * group
        self.num_samples = self.total_size // num_replicas
        self.start_batch = 0
        self.drop_last = False

    @property
    def batches_per_epoch(self) -> int:
        """Batches each rank draws per epoch."""
        return self.num_samples // self.batch_size

    def set_start(self, batch: int) -> None:
        """Skip the first ``batch`` batches of the current epoch (for resuming)."""
        self.start_batch = int(batch)

    def positions(self) -> list[int]:
        """Epoch positions this rank visits, in order (after the start offset)."""
        all_pos = list(range(self.rank, self.total_size, self.num_replicas))
        return all_pos[self.start_batch * self.batch_size :]

    def order(self) -> list[int]:
        """Dataset index at every epoch position (shuffled with ``seed + epoch``, cyclically padded)."""
        import torch

        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            perm = torch.randperm(self.dataset_len * self.repeat, generator=g).tolist()
        else:
            perm = list(range(self.dataset_len * self.repeat))
        perm = [i % self.dataset_len for i in perm]
        reps = math.ceil(self.total_size / len(perm))
        return (perm * reps)[: self.total_size]

    def __iter__(self):  # type: ignore[override]
        order = self.order()
        for pos in self.positions():
            yield (order[pos], (self.seed, self.epoch, pos))

    def __len__(self) -> int:
        return len(self.positions())


def _rng_for(item_seed: Any) -> np.random.Generator:
    if item_seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(v) for v in item_seed])


def _color_jitter(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation in ``[1 - strength, 1 + strength]`` (float32 in 0..255)."""
    x = img.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    x = x * b
    mean = x.mean()
    x = (x - mean) * c + mean
    gray = x.mean(axis=2, keepdims=True)
    x = (x - gray) * s + gray
    return np.clip(x, 0, 255)


class CocoKeypointDataset:
    """Top-down person crops of a COCO-format keypoint dataset.

    Args:
        ann_file: COCO keypoint annotation JSON.
        image_dir: directory of the images named in ``ann_file``.
        keypoint_set: layout name or :class:`KeypointSet` (K, flip pairs, upper body).
        codec: the model's :class:`~pyramidpose.codecs.heatmap.HeatmapCodec` (input and heatmap size,
            sigma, UDP or MSRA crops and targets); default ViTPose's 256x192 UDP codec.
        train: augment and produce targets (``True``) or produce plain crops for validation.
        detections: COCO detection-results JSON for validation boxes (``None``: ground-truth boxes).
        padding, flip_prob, half_body_prob, half_body_min_keypoints, scale_factor,
        rot_factor, rot_prob, color_jitter: augmentation, see :class:`~pyramidpose.training.config.DataConfig`.
        max_instances: keep only the first N persons.
        proposals, proposal_prob: a fitted :class:`~pyramidpose.data.proposals.ProposalModel`; with
            this probability a training crop is taken around a box sampled from it (AlphaPose's
            part-guided proposals) instead of the ground-truth box.
        cache_images: keep decoded images in memory (each worker process keeps its own copies).

    ``dataset[i]`` or ``dataset[(i, seed_triple)]`` returns a dict with ``image`` (float32 [3, H, W],
    ImageNet-normalised), ``index``, ``valid`` and ``error`` and, for training, ``target``
    (``[K, *codec.heatmap_size]``) and ``target_weight`` ([K]); for validation ``center``, ``scale`` (pixels) and
    ``score``.
    """

    def __init__(
        self,
        ann_file: str | Path,
        image_dir: str | Path,
        keypoint_set: str | KeypointSet = "coco",
        codec: HeatmapCodec | None = None,
        train: bool = True,
        detections: str | Path | None = None,
        det_score_thr: float = 0.0,
        padding: float = 1.25,
        flip_prob: float = 0.5,
        half_body_prob: float = 0.3,
        half_body_min_keypoints: int = 8,
        scale_factor: float = 0.5,
        rot_factor: float = 40.0,
        rot_prob: float = 0.6,
        color_jitter: float = 0.0,
        max_instances: int | None = None,
        cache_images: bool = False,
        proposals: Any = None,
        proposal_prob: float = 0.0,
        target_codec: Any = None,
    ) -> None:
        self.kpt_set = get_keypoint_set(keypoint_set) if isinstance(keypoint_set, str) else keypoint_set
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise DataError(f"image directory not found: {self.image_dir}")
        self.codec = codec if codec is not None else HeatmapCodec()
        self.input_size = self.codec.input_size  # (H, W)
        self.train = train
        self.padding = padding
        self.flip_prob = flip_prob
        self.half_body_prob = half_body_prob
        self.half_body_min_keypoints = half_body_min_keypoints
        self.scale_factor = scale_factor
        self.rot_factor = rot_factor
        self.rot_prob = rot_prob
        self.color_jitter = color_jitter
        self.proposals = proposals
        self.target_codec = target_codec  # SIKR / SimCC targets instead of heatmaps (codecs.coordinates)
        self.proposal_prob = proposal_prob if proposals is not None else 0.0
        if detections is not None and not train:
            self.instances, self.skipped = load_detection_instances(
                Path(detections), self.ann_file, self.image_dir, det_score_thr
            )
        else:
            self.instances, self.skipped = load_gt_instances(self.ann_file, self.image_dir, self.kpt_set)
        if max_instances is not None:
            self.instances = self.instances[: int(max_instances)]
        self.cache_images = cache_images
        self._cache: dict[str, np.ndarray] = {}
        #: Distillation: a teacher's keypoints ``[N, K, 3]`` (image pixels, score) per instance and the
        #: score threshold; when set, training samples also hold ``teacher_target``/``teacher_weight``
        #: encoded from them under the same augmentation (see ``pyramidpose.training.distill``).
        self.teacher_keypoints: np.ndarray | None = None
        self.teacher_score_thr = 0.3

    @property
    def aspect_ratio(self) -> float:
        return self.input_size[1] / self.input_size[0]

    def __len__(self) -> int:
        return len(self.instances)

    def load_image(self, inst: Instance) -> np.ndarray:
        """The RGB image of ``inst`` (decoded, or kept from before with ``cache_images``); raises
        :class:`DataError` when it cannot be read. Validation reads images through this too."""
        img = self._cache.get(inst.image_path) if self.cache_images else None
        if img is None:
            img = read_image(inst.image_path)
            if self.cache_images:
                self._cache[inst.image_path] = img
        return img

    def __getitem__(self, item: int | tuple[int, Any]) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (int(item), None)
        inst = self.instances[index]
        try:
            img = self.load_image(inst)
        except Exception as exc:  # noqa: BLE001 - any unreadable image is skipped, never fatal
            return self._invalid(index, inst, f"{inst.image_path}: {exc}")
        if self.train:
            return self._train_sample(index, inst, img, _rng_for(seed))
        return self._val_sample(index, inst, img)

    def _invalid(self, index: int, inst: Instance, error: str) -> dict[str, Any]:
        h, w = self.input_size
        k = self.kpt_set.num_keypoints
        out: dict[str, Any] = {
            "image": np.zeros((3, h, w), np.float32),
            "index": index,
            "valid": False,
            "error": error,
        }
        if self.train:
            if self.target_codec is not None:  # SIKR coordinates / SimCC labels: the codec's shapes
                target, weight = self.target_codec.encode(np.zeros((k, 2)), np.zeros(k))
                out["target"] = np.zeros_like(np.asarray(target, np.float32))
                out["target_weight"] = np.zeros_like(np.asarray(weight, np.float32))
            else:
                out["target"] = np.zeros((k, *self.codec.heatmap_size), np.float32)
                out["target_weight"] = np.zeros((k,), np.float32)
            if self.teacher_keypoints is not None:
                out["teacher_target"], out["teacher_weight"] = out["target"].copy(), out["target_weight"].copy()
        else:
            c, s = self._center_scale(inst)
            out.update(center=c.astype(np.float32), scale=s.astype(np.float32), score=np.float32(inst.score))
        return out

    def _center_scale(self, inst: Instance) -> tuple[np.ndarray, np.ndarray]:
        return box_to_center_scale(inst.bbox, self.aspect_ratio, self.padding)

    def _to_tensor(self, crop: np.ndarray) -> np.ndarray:
        return normalize_crops(crop.astype(np.float32) if crop.dtype != np.uint8 else crop)[0]

    def _train_sample(
        self, index: int, inst: Instance, img: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        assert inst.keypoints is not None
        kp = inst.keypoints[:, :2].astype(np.float64)
        vis = inst.keypoints[:, 2] > 0
        teacher = None if self.teacher_keypoints is None else self.teacher_keypoints[index]
        t_kp = None if teacher is None else teacher[:, :2].astype(np.float64)
        t_vis = None if teacher is None else teacher[:, 2] >= self.teacher_score_thr
        center, scale = self._center_scale(inst)
        # 0. part-guided proposal: a box with a detector's typical error for this kind of person
        if self.proposal_prob > 0 and rng.random() < self.proposal_prob:
            box = self.proposals.sample(inst.bbox, inst.keypoints, rng)
            center, scale = box_to_center_scale(box, self.aspect_ratio, self.padding)
        # 1. flip (the whole image, as mmpose's TopDownRandomFlip)
        if rng.random() < self.flip_prob:
            img = img[:, ::-1]
            width = img.shape[1]
            kp, vis = flip_keypoints(kp, width, self.kpt_set, vis)
            if t_kp is not None:
                t_kp, t_vis = flip_keypoints(t_kp, width, self.kpt_set, t_vis)
            center = np.array([width - 1 - center[0], center[1]])
        # 2. half body
        if vis.sum() > self.half_body_min_keypoints and rng.random() < self.half_body_prob:
            hb = half_body_box(kp, vis, self.kpt_set, self.aspect_ratio, rng)
            if hb is not None:
                center, scale = hb
        # 3. random scale and rotation
        s, rot = random_scale_rotation(rng, self.scale_factor, self.rot_factor, self.rot_prob)
        scale = np.asarray(scale) * s
        # 4. affine crop (UDP or MSRA) and targets
        crop = self.codec.crop(img, center, scale, rot)
        if self.color_jitter > 0:
            crop = _color_jitter(crop, self.color_jitter, rng)
        kp_in = self.codec.image_to_input(kp, center, scale, rot)
        target, weight = (self.target_codec or self.codec).encode(kp_in, vis.astype(np.float32))
        out = {
            "image": self._to_tensor(crop),
            "target": np.asarray(target, np.float32),
            "target_weight": np.asarray(weight, np.float32).reshape(-1),
            "index": index,
            "valid": True,
            "error": "",
        }
        if t_kp is not None:
            t_in = self.codec.image_to_input(t_kp, center, scale, rot)
            t_target, t_weight = self.codec.encode(t_in, t_vis.astype(np.float32))
            out["teacher_target"] = np.asarray(t_target, np.float32)
            out["teacher_weight"] = np.asarray(t_weight, np.float32).reshape(-1)
        return out

    def _val_sample(self, index: int, inst: Instance, img: np.ndarray) -> dict[str, Any]:
        center, scale = self._center_scale(inst)
        crop = self.codec.crop(img, center, scale)
        return {
            "image": self._to_tensor(crop),
            "index": index,
            "valid": True,
            "error": "",
            "center": center.astype(np.float32),
            "scale": scale.astype(np.float32),
            "score": np.float32(inst.score),
        }
