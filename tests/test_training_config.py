"""Training config: YAML + --set overrides, unknown/mistyped fields, shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyramidpose.errors import ConfigError
from pyramidpose.training.config import Config, config_from_dict, load_config

REPO = Path(__file__).resolve().parents[1]


def test_set_overrides_parse_yaml_values_and_nested_model_kwargs() -> None:
    cfg = load_config(
        None, ["optim.lr=1e-4", "model.input_size=[128, 96]", "model.overrides.neck={kind: fpn}", "optim.ema=true"]
    )
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.model.input_size == (128, 96)
    assert cfg.model.overrides == {"neck": {"kind": "fpn"}}
    assert cfg.optim.ema is True


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
    assert cfg.train.epochs == 210 and cfg.optim.grad_clip == 1.0 and cfg.data.codec == "udp"
    assert cfg.optim.layer_decay == {"s": 0.9, "b": 0.75, "l": 0.8, "h": 0.85}[name]
    assert cfg.model.drop_path_rate == {"s": 0.3, "b": 0.3, "l": 0.5, "h": 0.55}[name]
    assert cfg.train.batch_size * 8 == 512  # 64 per GPU on 8 GPUs


def test_coco_mini_config_loads() -> None:
    cfg = load_config(REPO / "configs" / "coco_mini_tiny.yaml")
    assert cfg.model.name == "vitpose-tiny"
    assert cfg.data.train_ann.endswith("person_keypoints_train2017.json")
