"""Top-down person crops of synthetic scenes, for the training engine (``data.source: synthetic``).

:class:`SyntheticKeypointDataset` is a :class:`~pyramidpose.data.coco.CocoKeypointDataset` whose
images are rendered on the fly (:class:`~pyramidpose.data.synthetic.SyntheticPeople`) instead of
read from files; the crop, augmentation, target encoding and validation output are the COCO
dataset's own code, so the same codec and recipe apply to both sources.

- Training: item ``i`` is training scene ``i`` (CMU subjects 01/02); each visit crops one of its
  people with enough labelled keypoints, chosen by the item's augmentation seed.
- Validation/test: the fixed test set (subject 03, its own backgrounds and seed); one item per
  labelled person, ground-truth boxes, and its COCO labels written to a JSON file
  (:attr:`ann_file`) for the COCO evaluation. Extra per-person fields in that file
  (``height_px``, ``occlusion``, ``depth_mm``, ``joints3d_mm``) serve the size/overlap splits and 3D.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.codecs.heatmap import HeatmapCodec
from pyramidpose.data.coco import CocoKeypointDataset, Instance, _rng_for
from pyramidpose.data.synthetic import BackgroundBank, SceneConfig, SyntheticPeople, SyntheticScene, coco_dict
from pyramidpose.errors import DataError

__all__ = ["SyntheticKeypointDataset", "synthetic_paths", "make_generator", "test_set_labels"]

LABELS_VERSION = 2  # bump when the generator or the label format changes (the cached test labels key)


def synthetic_paths(cfg: Any) -> dict[str, Path | None]:
    """The resolved mocap and background paths of ``cfg.data.synthetic``; DataError when one is missing."""
    from pyramidpose.training.config import require_data_paths, resolve_data_path

    s = cfg.data.synthetic
    paths: dict[str, Path | None] = {"data.synthetic.mocap": resolve_data_path(cfg, s.mocap)}
    for split in ("train", "test"):
        ann = getattr(s, f"{split}_backgrounds_ann")
        paths[f"data.synthetic.{split}_backgrounds_ann"] = resolve_data_path(cfg, ann)
        paths[f"data.synthetic.{split}_backgrounds_images"] = (
            resolve_data_path(cfg, getattr(s, f"{split}_backgrounds_images")) if ann else None
        )
    return require_data_paths(cfg, paths, folders={k for k in paths if not k.endswith("_ann")})


def _cache_dir(cfg: Any) -> Path:
    s = cfg.data.synthetic
    return Path(s.cache_dir).expanduser() if s.cache_dir else Path(tempfile.gettempdir()) / "pyramidpose-synthetic"


def make_generator(cfg: Any, split: str, paths: dict[str, Path | None] | None = None) -> SyntheticPeople:
    """The scene generator of ``split`` (``train`` or ``test``) described by ``cfg.data.synthetic``."""
    from pyramidpose.data.synthetic import MotionBank

    s = cfg.data.synthetic
    paths = paths or synthetic_paths(cfg)
    scene = SceneConfig(image_size=tuple(s.image_size), people=tuple(s.people), height_px=tuple(s.height_px))
    ann = paths[f"data.synthetic.{split}_backgrounds_ann"]
    images = paths[f"data.synthetic.{split}_backgrounds_images"]
    backgrounds = BackgroundBank.from_coco(ann, images) if ann is not None and images is not None else None
    mocap = paths["data.synthetic.mocap"]
    assert mocap is not None
    motion = MotionBank.for_split(mocap, split, scene.mocap_fps, cache_dir=_cache_dir(cfg))
    seed = s.seed if split == "train" else s.test_seed
    length = s.train_scenes if split == "train" else s.test_scenes
    return SyntheticPeople(split, seed, backgrounds=backgrounds, config=scene, motion=motion, length=length)


def _labelled(scene: SyntheticScene, min_keypoints: int) -> list[int]:
    return [
        p for p in range(len(scene.keypoints))
        if (scene.keypoints[p, :, 2] > 0).sum() >= min_keypoints and scene.boxes[p, 2] > 1 and scene.boxes[p, 3] > 1
    ]  # fmt: skip


def test_set_labels(gen: SyntheticPeople, min_keypoints: int, path: Path, progress: bool = False) -> dict[str, Any]:
    """COCO labels of every scene of ``gen`` (people with ``>= min_keypoints`` labelled keypoints),
    written once to ``path`` and read back from there afterwards."""
    from pyramidpose.utils.jsonio import read_json

    if path.is_file():
        try:
            return read_json(path, "synthetic test labels")
        except DataError:
            pass  # a damaged cache is rebuilt below
    from tqdm import tqdm

    from pyramidpose.utils.jsonio import write_json

    def scenes() -> Any:
        for i in tqdm(range(len(gen)), desc="synthetic test labels", disable=not progress, leave=False):
            sc = gen[i]
            keep = _labelled(sc, min_keypoints)
            yield i, SyntheticScene(
                image=sc.image, keypoints=sc.keypoints[keep], boxes=sc.boxes[keep], areas=sc.areas[keep],
                depth_mm=sc.depth_mm[keep], joints3d_mm=sc.joints3d_mm[keep], root_mm=sc.root_mm[keep],
                height_px=sc.height_px[keep],
                occlusion=sc.occlusion[keep], labels=sc.labels, camera=sc.camera,
                sources=[sc.sources[p] for p in keep],
            )  # fmt: skip

    doc = coco_dict(scenes(), "synthetic_{:08d}")
    doc["info"].update(seed=gen.seed, split=gen.split, subjects=list(gen.motion.subjects))
    write_json(path, doc)
    return doc


class SyntheticKeypointDataset(CocoKeypointDataset):
    """Synthetic scenes as top-down crops, with the COCO dataset's augmentation and codec.

    Args:
        cfg: a training :class:`~pyramidpose.training.config.Config` with ``data.source: synthetic``.
        train: training crops with targets, or the fixed test set's ground-truth boxes.
        codec: the model's :class:`~pyramidpose.codecs.heatmap.HeatmapCodec`.
        paths: pre-resolved :func:`synthetic_paths`.
        target_codec: the engine's coordinate codec for SIKR / SimCC targets (``None``: heatmaps).
        with_depth: training samples also carry ``depth`` ([K] meters relative to the pelvis, for
            2.5D heads; needs ``data.flip_prob: 0``).
    """

    def __init__(
        self,
        cfg: Any,
        train: bool,
        codec: HeatmapCodec,
        paths: dict[str, Path | None] | None = None,
        with_depth: bool = False,
        target_codec: Any = None,
    ) -> None:
        from pyramidpose.skeletons import get_keypoint_set

        d = cfg.data
        if d.keypoint_set != "coco":
            raise DataError(f"data.keypoint_set: the synthetic people are labelled in COCO-17, not {d.keypoint_set!r}")
        # the attributes CocoKeypointDataset's crop, augmentation and target code reads
        self.kpt_set = get_keypoint_set("coco")
        self.codec = codec
        self.input_size = codec.input_size
        self.train = train
        self.padding = d.padding
        self.flip_prob, self.half_body_prob = d.flip_prob, d.half_body_prob
        self.half_body_min_keypoints = d.half_body_min_keypoints
        self.scale_factor, self.rot_factor, self.rot_prob = d.scale_factor, d.rot_factor, d.rot_prob
        self.color_jitter = d.color_jitter
        self.cache_images = False
        self._cache: dict[str, np.ndarray] = {}
        self.skipped: Counter[str] = Counter()
        self.teacher_keypoints: np.ndarray | None = None  # no distillation teacher on synthetic scenes
        self.target_codec = target_codec  # SIKR / SimCC targets instead of heatmaps (codecs.coordinates)
        self.proposals, self.proposal_prob = None, 0.0  # crops from the exact boxes
        self.teacher_score_thr = 0.3
        self.min_keypoints = int(d.synthetic.min_keypoints)
        self.with_depth = with_depth
        if with_depth and train and d.flip_prob > 0:
            raise DataError("data.flip_prob: depth targets need flip_prob 0 (a flip would swap the joints' depths)")
        self.gen = make_generator(cfg, "train" if train else "test", paths)
        self._scenes: OrderedDict[int, SyntheticScene] = OrderedDict()
        self.instances: list[Instance] = []
        if train:
            self.ann_file = Path("")
            self.gt: dict[str, Any] = {}
            return
        s = d.synthetic
        key = hashlib.sha256(
            json.dumps([LABELS_VERSION, s.test_seed, s.test_scenes, list(s.image_size), list(s.people), list(s.height_px),
                        s.min_keypoints, s.test_backgrounds_ann, list(self.gen.motion.subjects)]).encode()
        ).hexdigest()[:16]  # fmt: skip
        self.ann_file = _cache_dir(cfg) / f"test_labels_{key}.json"
        self.gt = test_set_labels(self.gen, self.min_keypoints, self.ann_file)
        for a in self.gt["annotations"]:
            self.instances.append(
                Instance(
                    image_id=int(a["image_id"]), image_path=f"synthetic:test:{a['image_id']}",
                    bbox=np.asarray(a["bbox"], np.float32),
                    keypoints=np.asarray(a["keypoints"], np.float32).reshape(-1, 3), ann_id=int(a["id"]),
                )  # fmt: skip
            )

    def __len__(self) -> int:
        return len(self.gen) if self.train else len(self.instances)

    def scene(self, index: int) -> SyntheticScene:
        """Scene ``index`` (the last few are kept: validation visits each scene's people in a row)."""
        sc = self._scenes.get(index)
        if sc is None:
            sc = self.gen[index]
            self._scenes[index] = sc
            while len(self._scenes) > 4:
                self._scenes.popitem(last=False)
        return sc

    def load_image(self, inst: Instance) -> np.ndarray:
        """The rendered test scene of ``inst`` (validation reads images through this)."""
        return self.scene(inst.image_id).image

    def __getitem__(self, item: int | tuple[int, Any]) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (int(item), None)
        if not self.train:
            inst = self.instances[index]
            return self._val_sample(index, inst, self.load_image(inst))
        rng = _rng_for(seed)
        for k in range(4):  # a scene with nobody labelled enough: the next scenes beyond len() stand in
            sc = self.gen[index + k * len(self.gen)]
            people = _labelled(sc, self.min_keypoints)
            if people:
                break
        else:
            inst = Instance(index, f"synthetic:train:{index}", np.array([0, 0, 1, 1], np.float32), None)
            out = self._invalid(index, inst, f"synthetic scenes without a person having {self.min_keypoints} keypoints")
            if self.with_depth:
                out["depth"] = np.zeros(self.kpt_set.num_keypoints, np.float32)
            return out
        p = people[int(rng.integers(len(people)))]
        inst = Instance(index, f"synthetic:train:{index}", sc.boxes[p].copy(), sc.keypoints[p].copy())
        out = self._train_sample(index, inst, sc.image, rng)
        if self.with_depth:  # meters, relative to the pelvis (scale and rotation keep them)
            out["depth"] = (sc.depth_mm[p] / 1000.0).astype(np.float32)
        return out
