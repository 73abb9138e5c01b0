"""Training config: YAML + --set overrides, unknown/mistyped fields, shipped recipes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pyramidpose.errors import ConfigError
from pyramidpose.models.config import ModelConfig, NeckConfig
from pyramidpose.training.config import Config, config_from_dict, load_config, read_yaml_mapping

REPO = Path(__file__).resolve().parents[1]


def test_set_overrides_parse_yaml_values_and_the_typed_neck() -> None:
    cfg = load_config(
        None, ["optim.lr=1e-4", "model.input_size=[128, 96]", "model.neck={type: fpn, channels: 64}", "optim.ema=true"]
    )
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.model.input_size == (128, 96)
    assert isinstance(cfg.model.neck, NeckConfig) and (cfg.model.neck.type, cfg.model.neck.channels) == ("fpn", 64)
    assert cfg.optim.ema is True
    with pytest.raises(ConfigError, match=r"model.neck.kind"):
        load_config(None, ["model.neck={kind: fpn}"])


def test_model_section_is_the_model_config_filled_from_the_name_and_keypoint_set() -> None:
    cfg = load_config(None, ["model.name=vitpose-s-simple", "data.keypoint_set=mpii"])
    assert type(cfg.model) is ModelConfig
    assert (cfg.model.backbone, cfg.model.embed_dim, cfg.model.depth, cfg.model.head) == ("s", 384, 12, "simple")
    assert (cfg.model.keypoint_set, cfg.model.num_keypoints) == ("mpii", 16)
    with pytest.raises(ConfigError, match="do not match data.keypoint_set"):
        load_config(None, ["model.num_keypoints=5"])


def test_old_spellings_are_translated_with_a_future_warning(tmp_path: Path) -> None:
    """A YAML written before the model section became ModelConfig loads to the same config."""
    old = tmp_path / "old.yaml"
    old.write_text(
        "model:\n  name: vitpose-tiny\n  drop_path_rate: 0.1\n  pretrained: a.pth\n  backbone_pretrained: null\n"
        "  overrides:\n    neck: {type: fpn, aux_weight: 0.5}\n    head_channels: 64\n"
        "data:\n  codec: msra\n  sigma: 3.0\ntrain:\n  amp: none\n"
    )
    new = tmp_path / "new.yaml"
    new.write_text(
        "model:\n  name: vitpose-tiny\n  drop_path: 0.1\n  neck: {type: fpn, aux_weight: 0.5}\n  head_channels: 64\n"
        "  codec: msra\n  sigma: 3.0\ninit:\n  pretrained: a.pth\ntrain:\n  amp: none\n"
    )
    with pytest.warns(FutureWarning) as record:
        cfg_old = load_config(old)
    moved = " ".join(str(w.message) for w in record)
    for spelling in ("model.overrides", "model.drop_path_rate", "model.pretrained", "data.codec", "data.sigma"):
        assert spelling in moved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg_new = load_config(new)
    cfg_old.base_dir = cfg_new.base_dir
    assert cfg_old == cfg_new
    assert cfg_new.model.drop_path == 0.1 and cfg_new.init.pretrained == "a.pth" and cfg_new.model.codec == "msra"


def test_shipped_configs_use_the_current_spelling() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in sorted((REPO / "configs").glob("*.yaml")):
            if path.name.startswith(("coco_mini", "vitpose")) and "kind" not in read_yaml_mapping(path):
                load_config(path)  # (a file with a top-level kind is another trainer's config, e.g. PAF)


def test_unknown_field_names_the_field_and_the_accepted_ones(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lr: 1e-3\n  layer_decayy: 0.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "optim.layer_decayy" in msg and "layer_decay" in msg and "weight_decay" in msg and str(p) in msg
    with pytest.raises(ConfigError, match="unknown config field 'trian'"):
        load_config(None, ["trian.epochs=3"])


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.batch_size=abc", "train.batch_size: expected an integer"),
        ("optim.lr=fast", "optim.lr: expected a number"),
        ("train.amp=fp8", "train.amp: 'fp8' is not one of"),
        ("model.input_size=[256]", "expected 2 values"),
        ("optim.ema=3", "expected true or false"),
    ],
)
def test_mistyped_values_are_config_errors(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        load_config(None, [override])


def test_round_trip_through_dict_and_yaml() -> None:
    import yaml

    cfg = load_config(None, ["optim.milestones=[5, 8]", "data.val_detections=dets.json"])
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert isinstance(again, Config)


@pytest.mark.parametrize("name", ["s", "b", "l", "h"])
def test_official_recipes_load_and_follow_vitpose(name: str) -> None:
    cfg = load_config(REPO / "configs" / f"vitpose_{name}_coco_256x192.yaml")
    assert cfg.model.name == f"vitpose-{name}" and cfg.model.input_size == (256, 192)
    assert cfg.optim.lr == 5e-4 and cfg.optim.weight_decay == 0.1 and cfg.optim.milestones == [170, 200]
    assert cfg.train.epochs == 210 and cfg.optim.grad_clip == 1.0 and cfg.model.codec == "udp"
    assert cfg.optim.layer_decay == {"s": 0.9, "b": 0.75, "l": 0.8, "h": 0.85}[name]
    assert cfg.model.drop_path == {"s": 0.3, "b": 0.3, "l": 0.5, "h": 0.55}[name]
    assert cfg.train.batch_size * 8 == 512  # 64 per GPU on 8 GPUs


def test_coco_mini_config_loads() -> None:
    cfg = load_config(REPO / "configs" / "coco_mini_tiny.yaml")
    assert cfg.model.name == "vitpose-tiny"
    assert cfg.data.train_ann.endswith("person_keypoints_train2017.json")
