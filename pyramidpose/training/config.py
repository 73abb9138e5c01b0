"""Training configuration: typed dataclasses loaded from YAML, overridable from the command line.

A config file has the sections ``model``, ``data``, ``optim``, ``loss``, ``train``, ``eval`` and
``checkpoint``; every field is documented in the dataclasses below and every field has a default, so
a YAML file only lists what it changes. Unknown or mistyped fields are errors that name the field and
the accepted ones. ``--set optim.lr=1e-4`` overrides any field (values are parsed as YAML).

:func:`dataclass_from_dict` and :func:`load_yaml_config` are the generic typed-YAML loaders behind
it; the lifting and forecasting experiments use them too (re-exported by
:mod:`pyramidpose.training.loop`).

Pure Python (no torch import) so the CLI can validate a config quickly.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pyramidpose.errors import ConfigError, DataError
from pyramidpose.models.config import ModelConfig, preset_fields
from pyramidpose.skeletons import get_keypoint_set


@dataclass
class InitConfig:
    """Where the weights of a run start from (random initialisation when both are ``null``)."""

    pretrained: str | None = None
    """Full checkpoint to start from (a pyramidpose or official ViTPose checkpoint)."""
    backbone_pretrained: str | None = None
    """Backbone-only weights (e.g. MAE); the position grid is resized when the input size differs."""


@dataclass
class SyntheticConfig:
    """The synthetic people benchmark (:mod:`pyramidpose.data.synthetic`); paths are relative to
    ``data.root``. Training scenes use CMU subjects 01/02 and train backgrounds, test scenes subject
    03 and test backgrounds."""

    mocap: str = "cmu-mocap"
    """The CMU mocap directory (``subjects/01/01.asf`` ...)."""
    train_backgrounds_ann: str | None = "coco-mini/annotations/person_keypoints_train2017.json"
    """COCO annotations whose images (minus every person box) are the training backgrounds;
    ``null``: procedural backgrounds."""
    train_backgrounds_images: str = "coco-mini/train2017"
    test_backgrounds_ann: str | None = "coco-mini/annotations/person_keypoints_val2017.json"
    test_backgrounds_images: str = "coco-mini/val2017"
    train_scenes: int = 20000
    """Distinct training scenes (one person crop is drawn from each visit of a scene)."""
    test_scenes: int = 300
    """Scenes of the fixed test set (every labelled person of each is evaluated)."""
    seed: int = 0
    """Seed of the training scenes (the training seed only changes augmentation and order)."""
    test_seed: int = 1000
    image_size: tuple[int, int] = (320, 320)
    """Scene (height, width)."""
    people: tuple[int, int] = (1, 5)
    height_px: tuple[float, float] = (40.0, 260.0)
    """Person heights in pixels (log-uniform)."""
    min_keypoints: int = 4
    """A person is trained and evaluated when at least this many keypoints are labelled (v > 0)."""
    cache_dir: str | None = None
    """Where the parsed motion and the test labels are kept (``null``: the system temp directory)."""


@dataclass
class DataConfig:
    """A COCO-format top-down keypoint dataset (any keypoint set of :mod:`pyramidpose.skeletons`)."""

    source: str = "coco"
    """``coco`` (the annotation files below) or ``synthetic`` (:class:`SyntheticConfig`, rendered on the fly)."""
    root: str = "data/coco"
    """Dataset root; relative paths below are resolved against it (and ``root`` against the config file's
    directory when it is relative and does not exist from the working directory)."""
    train_ann: str = "annotations/person_keypoints_train2017.json"
    """COCO keypoint annotations used for training (ground-truth boxes of non-crowd persons)."""
    train_images: str = "train2017"
    """Directory of the training images."""
    val_ann: str | None = "annotations/person_keypoints_val2017.json"
    """COCO keypoint annotations used for validation; ``null`` disables validation."""
    val_images: str = "val2017"
    """Directory of the validation images."""
    val_detections: str | None = None
    """COCO detection-results JSON of person boxes for validation; ``null`` uses ground-truth boxes."""
    det_score_thr: float = 0.0
    """Detections scoring below this are ignored."""
    keypoint_set: str = "coco"
    """Keypoint layout name from :mod:`pyramidpose.skeletons` (sets K, flip pairs, OKS sigmas); the
    model's ``keypoint_set`` and ``num_keypoints`` follow it unless given."""
    target: str = "heatmap"
    """What the model learns: ``heatmap`` (Gaussian heatmaps, MSE), ``sikr`` (AlphaPose's symmetric
    integral regression on the heatmap head's logits, L1) or ``simcc`` (coordinate classification,
    KL; needs ``model.head: simcc``); the model's ``target`` follows it unless given."""
    padding: float = 1.25
    """Box enlargement factor before cropping."""
    flip_prob: float = 0.5
    """Probability of a horizontal flip (with left/right keypoint swap)."""
    half_body_prob: float = 0.3
    """Probability of cropping the upper or lower body only."""
    half_body_min_keypoints: int = 8
    """Half-body is only tried when more labelled keypoints than this are present."""
    scale_factor: float = 0.5
    """Random scale: s * clip(1 + N(0,1)*f, 1-f, 1+f) (ViTPose: 0.5)."""
    rot_factor: float = 40.0
    """Random rotation: clip(N(0,1)*f, -2f, 2f) degrees (ViTPose: 40)."""
    rot_prob: float = 0.6
    """Probability of applying the random rotation."""
    color_jitter: float = 0.0
    """Strength of brightness/contrast/saturation jitter (0 disables it)."""
    proposals: str | None = None
    """Part-guided proposal model (JSON from ``scripts/fit_proposals.py``; relative to the config file's
    directory, else to ``root``); with
    ``proposal_prob`` > 0 training crops are sometimes taken around boxes sampled from it."""
    proposal_prob: float = 0.0
    """Probability of replacing a training person's box by a sampled proposal (needs ``proposals``)."""
    max_train_instances: int | None = None
    """Use only the first N training persons (for overfitting checks and quick runs)."""
    repeat: int = 1
    """Visit the training set this many times per epoch (for small datasets: fewer, longer epochs)."""
    num_workers: int = 2
    """DataLoader worker processes per training process (images are decoded in the workers)."""
    cache_images: bool = False
    """Keep decoded images in memory (per worker process); for small datasets such as coco-mini."""
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    """Used when ``source`` is ``synthetic``."""


@dataclass
class OptimConfig:
    """AdamW with layer-wise learning-rate decay and a warm-up + step/cosine schedule."""

    lr: float = 5e-4
    """Base learning rate (for the head; backbone layers get lr * layer_decay**depth_from_top)."""
    weight_decay: float = 0.1
    """AdamW weight decay (not applied to the position embedding, norms and biases)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    layer_decay: float = 0.75
    """Layer-wise learning-rate decay factor (ViTPose: S 0.9, B 0.75, L 0.8, H 0.85); 1 disables it."""
    num_layers: int | None = None
    """Number of transformer blocks for the layer decay; ``null`` uses the model's depth."""
    schedule: str = "step"
    """``step`` (multiply by ``gamma`` at each milestone epoch) or ``cosine`` (down to ``min_lr``)."""
    milestones: list[int] = field(default_factory=lambda: [170, 200])
    """Epochs at which the step schedule decays the learning rate."""
    gamma: float = 0.1
    """Step decay factor."""
    min_lr: float = 0.0
    """Final learning rate of the cosine schedule."""
    warmup_iters: int = 500
    """Linear warm-up length in optimiser steps."""
    warmup_ratio: float = 0.001
    """Learning rate at the start of warm-up, as a fraction of the scheduled one."""
    grad_clip: float | None = 1.0
    """Maximum global gradient L2 norm; ``null`` disables clipping."""
    accumulate_steps: int = 1
    """Number of batches whose gradients are summed before each optimiser step."""
    ema: bool = False
    """Keep an exponential moving average of the weights (used for validation and export)."""
    ema_decay: float = 0.9998
    """EMA decay per optimiser step."""


@dataclass
class LossConfig:
    """Keypoint heatmap loss."""

    use_target_weight: bool = True
    """Weigh each keypoint's MSE by its target weight (unlabelled keypoints weigh 0)."""
    ohkm: bool = False
    """Online hard keypoint mining: average only the ``ohkm_topk`` largest per-keypoint losses."""
    ohkm_topk: int = 8
    """Number of hard keypoints kept per instance with ``ohkm``."""
    loss_weight: float = 1.0
    """Multiplier of the loss."""


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = 210
    """Number of epochs."""
    batch_size: int = 64
    """Images per process per step (total batch = batch_size * world size * accumulate_steps)."""
    amp: str = "auto"
    """Precision: ``auto`` (bf16 where the hardware has it natively: CPUs with AMX/AVX512-BF16, CUDA
    with bf16; fp16 + GradScaler on CUDA without bf16; fp32 otherwise), ``fp32`` (``none`` is the old
    spelling), ``bf16`` (warns where emulated) or ``fp16`` (CUDA only)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    seed: int = 0
    """Seed of the model initialisation, sampling order, augmentation and drop path."""
    sync_bn: bool = True
    """Convert BatchNorm layers to SyncBatchNorm under CUDA DDP."""
    log_interval: int = 10
    """Steps between progress-bar / TensorBoard loss updates."""
    tensorboard: bool = True
    """Write TensorBoard scalars when the ``tensorboard`` package is installed."""
    threads: int | None = None
    """torch CPU threads per process; ``null`` keeps torch's default."""


@dataclass
class EvalConfig:
    """Validation (COCO keypoint AP on ``data.val_ann``)."""

    interval: int = 10
    """Validate every N epochs (and after the last epoch); 0 disables validation."""
    batch_size: int = 32
    """Images per process during validation."""
    flip_test: bool = True
    """Average the predictions of the image and its mirror."""


@dataclass
class CheckpointConfig:
    """What gets saved into ``WORK_DIR``."""

    interval: int = 10
    """Also keep ``epoch_N`` model files every N epochs (0: only last and best)."""
    save_every_steps: int = 0
    """Write the resumable ``checkpoints/last.pt`` every N steps as well as every epoch (0: per epoch)."""


@dataclass
class DistillConfig:
    """Knowledge distillation from a teacher (see ``pyramidpose/training/distill.py``, docs/variants.md)."""

    teacher: str | None = None
    """Any pose model pyramidpose runs: a checkpoint ``load_model`` reads (ViTPose, Sapiens, ours), or a
    ``--weights`` name of ``load_backend`` (``blazepose``, the embedded ONNX models...); ``null`` = no
    distillation."""
    mode: str = "auto"
    """``heatmaps``: mimic the teacher's heatmaps (resampled to the student grid; heatmap models only);
    ``keypoints``: the teacher's keypoints rendered as targets (any backend); ``auto``: heatmaps when the
    teacher is a heatmap checkpoint, else keypoints."""
    mimic_weight: float = 1.0
    """Weight of the teacher loss."""
    gt_weight: float = 1.0
    """Weight of the ground-truth loss (only labelled keypoints count)."""
    score_thr: float = 0.3
    """Teacher keypoints scored below this are no target (keypoint mode and pseudo-labels)."""
    pseudo_labels: bool = True
    """Also train on the unlabelled (no keypoints, not crowd) people of the training images, with the
    teacher's keypoints as their only targets."""
    knowledge_token: str | None = None
    """A knowledge token learned with the frozen teacher (``pyramidpose distill --knowledge-token``),
    appended frozen to the student's tokens."""


@dataclass
class Config:
    """A complete training configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The network: :class:`pyramidpose.models.config.ModelConfig` itself (with the codec and the
    typed ``neck`` section). ``name: vitpose-tiny`` alone fills the backbone size from the name."""
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    base_dir: str = ""
    """Directory of the config file (set by :func:`load_config`; resolves relative data paths)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists) suitable for YAML/JSON/torch.save."""
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (converting int->float, list->tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1 and (dataclasses.is_dataclass(args[0]) or isinstance(value, dict)):
            raise ConfigError(errors[0])  # "X | None" of a section: the section's own message
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of fields, got {value!r}")
        return dataclass_from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)} ({value!r})")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str) and _looks_numeric(value):  # PyYAML reads 1e-3 (no dot) as a string
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{where}: {value} is too large for a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp}")  # pragma: no cover


def dataclass_from_dict(
    cls: type, values: dict[str, Any], where: str = "", exclude: tuple[str, ...] = ()
) -> Any:
    """Build dataclass ``cls`` from a nested dict, checking every field name and type.

    ``where`` is the dotted section name used in messages; ``exclude`` names fields a file may not
    set. An unknown field raises :class:`ConfigError` naming it and the accepted fields; a mistyped
    value names the field and the expected type. Nested dataclasses, ``X | None``, lists, fixed and
    variable tuples and dicts are supported; ints are accepted for floats and integral floats for ints.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            label = f"{where}.{key}" if where else str(key)
            section = f"section '{where}'" if where else "the top level"
            raise ConfigError(
                f"unknown config field '{label}'; accepted fields in {section}: {', '.join(names)}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field without a default is missing
        raise ConfigError(f"{where or 'config'}: {exc}") from None


def _check_choices(cfg: Config) -> None:
    choices = {
        "data.source": (cfg.data.source, ("coco", "synthetic")),
        "optim.schedule": (cfg.optim.schedule, ("step", "cosine")),
        "train.amp": (cfg.train.amp, ("auto", "fp32", "bf16", "fp16", "none")),
        "distill.mode": (cfg.distill.mode, ("auto", "heatmaps", "keypoints")),
    }
    choices["data.target"] = (cfg.data.target, ("heatmap", "sikr", "simcc"))
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}: '{value}' is not one of {', '.join(allowed)}")
    if (cfg.data.target == "simcc") != (cfg.model.head == "simcc"):
        raise ConfigError("data.target simcc and model.head simcc go together; set both or neither")
    try:
        kset = get_keypoint_set(cfg.data.keypoint_set)
    except KeyError as exc:
        raise ConfigError(f"data.keypoint_set: {exc.args[0]}") from None
    if (cfg.model.keypoint_set, cfg.model.num_keypoints) != (kset.name, kset.num_keypoints):
        raise ConfigError(
            f"model.keypoint_set/num_keypoints ({cfg.model.keypoint_set}, {cfg.model.num_keypoints}) do not match "
            f"data.keypoint_set {kset.name} ({kset.num_keypoints} keypoints); leave them out of the model section"
        )
    positive = {
        "train.epochs": cfg.train.epochs,
        "train.batch_size": cfg.train.batch_size,
        "eval.batch_size": cfg.eval.batch_size,
        "optim.accumulate_steps": cfg.optim.accumulate_steps,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value}")
    if any(s <= 0 or s % 4 for s in cfg.model.input_size):
        raise ConfigError(f"model.input_size must be positive multiples of 4, got {cfg.model.input_size}")


def _check_ranges(cfg: Config) -> None:
    """Numbers in range before anything runs (torch would fail later, after the run directory
    exists, or train silently on nonsense: a zero sigma gives empty targets)."""
    o = cfg.optim
    checks = [
        ("optim.lr", o.lr, o.lr >= 0, ">= 0"),
        ("optim.weight_decay", o.weight_decay, o.weight_decay >= 0, ">= 0"),
        ("optim.betas", o.betas, all(0 <= b < 1 for b in o.betas), "two numbers in [0, 1)"),
        ("optim.layer_decay", o.layer_decay, 0 < o.layer_decay <= 1, "in (0, 1]"),
        ("optim.gamma", o.gamma, o.gamma > 0, "> 0"),
        ("optim.min_lr", o.min_lr, o.min_lr >= 0, ">= 0"),
        ("optim.warmup_iters", o.warmup_iters, o.warmup_iters >= 0, ">= 0"),
        ("optim.warmup_ratio", o.warmup_ratio, 0 <= o.warmup_ratio <= 1, "in [0, 1]"),
        ("optim.grad_clip", o.grad_clip, o.grad_clip is None or o.grad_clip > 0, "> 0 or null"),
        ("optim.ema_decay", o.ema_decay, 0 <= o.ema_decay < 1, "in [0, 1)"),
        ("data.num_workers", cfg.data.num_workers, cfg.data.num_workers >= 0, ">= 0"),
    ]
    checks.append(("model.sigma", cfg.model.sigma, cfg.model.sigma > 0, "> 0 (heatmap pixels)"))
    for key, value, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{key} must be {expected}, got {value}")


def config_from_dict(values: dict[str, Any], base_dir: str | Path = "") -> Config:
    """Build a :class:`Config` from a nested dict, checking every field name and type."""
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(values).__name__}")
    values = translate_old_spellings({k: v for k, v in values.items() if k != "base_dir"})
    values["model"] = _complete_model_section(values.get("model") or {}, values.get("data") or {})
    cfg = dataclass_from_dict(Config, values, "", exclude=("base_dir",))
    cfg.base_dir = str(base_dir)
    _check_choices(cfg)
    _check_ranges(cfg)
    return cfg


#: Old training-config spellings -> where they live now (read with a FutureWarning).
MOVED_FIELDS = {
    ("model", "drop_path_rate"): ("model", "drop_path"),
    ("model", "pretrained"): ("init", "pretrained"),
    ("model", "backbone_pretrained"): ("init", "backbone_pretrained"),
    ("data", "codec"): ("model", "codec"),
    ("data", "sigma"): ("model", "sigma"),
}


def translate_old_spellings(values: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a config mapping written before the model section became :class:`ModelConfig`:
    ``model.overrides: {...}`` is merged into ``model``, and the :data:`MOVED_FIELDS` move (a
    ``null`` ``drop_path_rate`` meant "the model's default" and is dropped). Each translation warns
    (FutureWarning) with the new spelling; the input is not modified."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    model = out.get("model")
    if isinstance(model, dict) and "overrides" in model:
        extra = model.pop("overrides") or {}
        if not isinstance(extra, dict):
            raise ConfigError(f"model.overrides: expected a mapping, got {extra!r}")
        _warn_moved("model.overrides: {...}", "the fields directly in the model section (e.g. model.neck)")
        for key, value in extra.items():
            model.setdefault(key, value)
    for (sec, key), (new_sec, new_key) in MOVED_FIELDS.items():
        section = out.get(sec)
        if not isinstance(section, dict) or key not in section:
            continue
        value = section.pop(key)
        _warn_moved(f"{sec}.{key}", f"{new_sec}.{new_key}")
        if value is None and new_key == "drop_path":
            continue
        target = out.setdefault(new_sec, {})
        if not isinstance(target, dict):
            raise ConfigError(f"section '{new_sec}' must be a mapping of fields")
        target.setdefault(new_key, value)
    return out


def _warn_moved(old: str, new: str) -> None:
    warnings.warn(f"config: '{old}' is an old spelling; write {new} instead", FutureWarning, stacklevel=4)


def _complete_model_section(model: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Fill what the model section may leave out: the backbone size from ``name`` when no
    ``backbone`` is given, and the keypoint layout from ``data.keypoint_set``."""
    if not isinstance(model, dict):
        return model
    model = dict(model)
    if "backbone" not in model:
        name = model.get("name", ModelConfig.name)
        if not isinstance(name, str):
            raise ConfigError(f"model.name: expected a string, got {name!r}")
        fields = preset_fields(name, model.get("head"))
        if any(k in model for k in ("embed_dim", "depth", "num_heads")):
            fields["backbone"] = "custom"  # as create_model: a size given by hand is a custom backbone
        model = {**fields, **model, "name": fields["name"]}
    if "keypoint_set" not in model or "num_keypoints" not in model:
        try:
            kset = get_keypoint_set(str(data.get("keypoint_set", DataConfig.keypoint_set)))
        except KeyError as exc:
            raise ConfigError(f"data.keypoint_set: {exc.args[0]}") from None
        model.setdefault("keypoint_set", kset.name)
        model.setdefault("num_keypoints", kset.num_keypoints)
    target = data.get("target", DataConfig.target)
    if target not in ("heatmap", "sikr", "simcc"):
        raise ConfigError(f"data.target: '{target}' is not one of heatmap, sikr, simcc")
    model.setdefault("target", target)
    return model


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` strings (values parsed as YAML) to a nested dict, in place; returns it."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.lr=1e-4), got '{item}'")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set: empty key in '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _looks_numeric(value):
            value = float(value)
        node = values
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: '{p}' is not a section")
            node = child
        node[parts[-1]] = value
    return values


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (``{}`` for an empty file); :class:`ConfigError` when the
    file is missing, unreadable, not YAML or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file; a config is YAML text.") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply to read.") from None
    values = loaded or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return values


def load_yaml_config(path: str | Path, cls: type) -> Any:
    """Read a YAML file into dataclass ``cls`` (see :func:`dataclass_from_dict`); errors name the file."""
    values = read_yaml_mapping(path)
    try:
        return dataclass_from_dict(cls, values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    values: dict[str, Any] = {}
    base_dir: str | Path = ""
    if path is not None:
        path = Path(path)
        values = read_yaml_mapping(path)
        base_dir = path.resolve().parent
    apply_overrides(values, list(overrides or []))
    try:
        return config_from_dict(values, base_dir)
    except ConfigError as exc:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{exc}") from None


def resolve_data_path(cfg: Config, rel: str | None) -> Path | None:
    """Resolve a data path: absolute, or relative to ``data.root`` (itself relative to the working
    directory, or to the config file's directory when it does not exist from the working directory)."""
    if rel is None:
        return None
    p = Path(rel).expanduser()
    if p.is_absolute():
        return p
    root = Path(cfg.data.root).expanduser()
    if not root.is_absolute() and not root.exists() and cfg.base_dir:
        alt = Path(cfg.base_dir) / root
        if alt.exists():
            root = alt
    return root / p


def require_data_paths(cfg: Config, paths: dict[str, Path | None], folders: set[str]) -> dict[str, Path | None]:
    """Check that every resolved path exists (keys in ``folders`` as folders, the others as files);
    DataError naming the config key and how to fix it. Returns ``paths``."""
    for key, p in paths.items():
        if p is None:
            continue
        ok = p.is_dir() if key in folders else p.is_file()
        if not ok:
            raise DataError(
                f"{key}: {p} does not exist (data.root is '{cfg.data.root}'); fix the path in the config "
                f"or with --set {key}=PATH / --set data.root=DIR"
            )
    return paths
