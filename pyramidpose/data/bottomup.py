"""Whole-image samples with every person, for bottom-up (PAF) training and prediction.

An image is scaled so its longer side fills the square model input (times a random scale when
training), optionally rotated, flipped and shifted, and placed on a zero canvas. Targets are the
:class:`~pyramidpose.codecs.paf.PafCodec` heatmaps and fields of all labelled people, and a loss mask
at the output resolution that is 0 over crowd regions and over people without any labelled keypoint
(COCO has them: the network must not be taught that they are background), 1 elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pyramidpose.codecs.paf import PafCodec
from pyramidpose.data.images import read_image
from pyramidpose.data.transforms import normalize_crops
from pyramidpose.errors import DataError
from pyramidpose.skeletons import get_keypoint_set


def _segmentation_mask(ann: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The annotation's region as a uint8 mask (polygons or RLE, as pycocotools reads them)."""
    from pycocotools import mask as mask_utils

    seg = ann.get("segmentation")
    if not seg:
        x, y, w, h = (int(round(v)) for v in ann.get("bbox", (0, 0, 0, 0)))
        m = np.zeros((height, width), np.uint8)
        m[max(y, 0) : y + h, max(x, 0) : x + w] = 1
        return m
    if isinstance(seg, list):
        rles = mask_utils.frPyObjects(seg, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = seg
    return mask_utils.decode(rle).astype(np.uint8)


def fit_matrix(width: int, height: int, size: int, scale: float = 1.0, rot: float = 0.0,
               shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:  # fmt: skip
    """2x3 affine image -> input: scale the longer side to ``size * scale``, rotate by ``rot`` degrees
    about the image centre, centre it in the ``size`` square and move it by ``shift`` input pixels."""
    s = size * scale / max(width, height)
    m = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), rot, s)
    m[:, 2] += (
        np.array([(size - 1) / 2, (size - 1) / 2]) - np.array([(width - 1) / 2, (height - 1) / 2]) + shift
    )
    return m


class BottomUpDataset:
    """Images of a COCO keypoint file with all their people.

    Args:
        ann_file, image_dir: COCO keypoint annotations and their images.
        codec: the model's :class:`PafCodec` (its ``heatmap_size * stride`` is the square input).
        train: augment and return targets and masks; else plain resized images with their scale.
        scale_factor, rot_factor, flip_prob, shift_factor: augmentation (scale in ``1 +- f``,
            rotation up to ``rot_factor`` degrees, shift up to ``shift_factor`` of the input).
        max_images: keep only the first N images; cache_images: keep decoded images in memory.

    ``dataset[i]`` returns ``image`` (float32 [3, S, S]), ``index``, ``valid``, ``error`` and, for
    training, ``target`` ([K + 2L, S/4, S/4]) and ``mask`` ([1, S/4, S/4]); for prediction
    ``matrix`` (the 2x3 image -> input affine) and ``image_id``.
    """

    def __init__(
        self,
        ann_file: str | Path,
        image_dir: str | Path,
        codec: PafCodec,
        train: bool = True,
        scale_factor: float = 0.25,
        rot_factor: float = 30.0,
        flip_prob: float = 0.5,
        shift_factor: float = 0.1,
        max_images: int | None = None,
        cache_images: bool = False,
    ) -> None:
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        if not self.image_dir.is_dir():
            raise DataError(f"image directory not found: {self.image_dir}")
        try:
            coco = json.loads(self.ann_file.read_text(encoding="utf-8"))
            images = list(coco["images"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{self.ann_file}: not a readable COCO annotation file ({exc})") from None
        self.codec = codec
        self.kset = get_keypoint_set(codec.keypoint_set)
        self.size = codec.heatmap_size[0] * codec.stride
        if codec.heatmap_size[0] != codec.heatmap_size[1]:
            raise DataError(f"bottom-up inputs are square; the codec's maps are {codec.heatmap_size}")
        anns: dict[int, list[dict[str, Any]]] = {}
        for a in coco.get("annotations", []):
            anns.setdefault(int(a.get("image_id", -1)), []).append(a)
        labelled = lambda a: not a.get("iscrowd") and any(v > 0 for v in (a.get("keypoints") or [])[2::3])  # noqa: E731
        # training: images with at least one labelled person; prediction: every image
        self.images = [
            im for im in images if not train or any(labelled(a) for a in anns.get(int(im["id"]), []))
        ]
        if max_images is not None:
            self.images = self.images[: int(max_images)]
        self.anns = anns
        self.train = train
        self.scale_factor, self.rot_factor = scale_factor, rot_factor
        self.flip_prob, self.shift_factor = flip_prob, shift_factor
        self.cache_images = cache_images
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, path: Path) -> np.ndarray:
        img = self._cache.get(str(path))
        if img is None:
            img = read_image(path)
            if self.cache_images:
                self._cache[str(path)] = img
        return img

    def __getitem__(self, item: int | tuple[int, Any]) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (int(item), None)
        im = self.images[index]
        path = self.image_dir / im["file_name"]
        try:
            img = self._image(path)
        except DataError as exc:
            return self._invalid(index, str(exc))
        if not self.train:
            m = fit_matrix(img.shape[1], img.shape[0], self.size)
            crop = cv2.warpAffine(img, m, (self.size, self.size), flags=cv2.INTER_LINEAR)
            return {"image": normalize_crops(crop)[0], "index": index, "valid": True, "error": "",
                    "matrix": m.astype(np.float64), "image_id": int(im["id"])}  # fmt: skip
        return self._train_sample(index, im, img, np.random.default_rng(seed))

    def _invalid(self, index: int, error: str) -> dict[str, Any]:
        h = self.codec.heatmap_size[0]
        out: dict[str, Any] = {"image": np.zeros((3, self.size, self.size), np.float32), "index": index,
                               "valid": False, "error": error}  # fmt: skip
        if self.train:
            n = self.codec.num_keypoints + self.codec.num_paf_channels
            out.update(target=np.zeros((n, h, h), np.float32), mask=np.zeros((1, h, h), np.float32))
        else:
            out.update(matrix=np.eye(3)[:2], image_id=int(self.images[index]["id"]))
        return out

    def _train_sample(
        self, index: int, im: dict[str, Any], img: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        h_img, w_img = img.shape[:2]
        s = 1.0 + float(np.clip(rng.normal(), -1, 1)) * self.scale_factor
        rot = float(np.clip(rng.normal(), -1, 1)) * self.rot_factor if rng.random() < 0.5 else 0.0
        shift = tuple(rng.uniform(-1, 1, 2) * self.shift_factor * self.size)
        m = fit_matrix(w_img, h_img, self.size, s, rot, shift)  # type: ignore[arg-type]
        flip = rng.random() < self.flip_prob
        if flip:  # mirror the input: x -> size - 1 - x
            m = np.array([[-1.0, 0.0, self.size - 1], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
        crop = cv2.warpAffine(img, m, (self.size, self.size), flags=cv2.INTER_LINEAR)
        people, ignore = [], np.zeros((h_img, w_img), np.uint8)
        for a in self.anns.get(int(im["id"]), []):
            kp = np.asarray(a.get("keypoints") or np.zeros(3 * self.kset.num_keypoints), np.float64).reshape(
                -1, 3
            )
            if a.get("iscrowd") or not (kp[:, 2] > 0).any():
                ignore |= _segmentation_mask(a, h_img, w_img)
                continue
            xy = kp[:, :2] @ m[:, :2].T + m[:, 2]
            if flip:
                xy, kp = xy[self.kset.flip_index()], kp[self.kset.flip_index()]
            people.append(np.concatenate([xy, kp[:, 2:]], axis=1))
        heat, pafs = self.codec.encode(
            np.stack(people) if people else np.zeros((0, self.kset.num_keypoints, 3))
        )
        hs = self.codec.heatmap_size[0]
        mo = np.diag([1 / self.codec.stride, 1 / self.codec.stride]) @ m  # image -> output pixels
        ign = cv2.warpAffine(ignore, mo, (hs, hs), flags=cv2.INTER_LINEAR)
        return {
            "image": normalize_crops(crop)[0], "target": np.concatenate([heat, pafs]),
            "mask": (ign == 0).astype(np.float32)[None], "index": index, "valid": True, "error": "",
        }  # fmt: skip


def paf_loss(stages: list[Any], target: Any, mask: Any) -> Any:
    """Masked mean squared error summed over the stages (intermediate supervision)."""
    total = 0.0
    for out in stages:
        total = total + (((out.float() - target) ** 2) * mask).mean()
    return total
