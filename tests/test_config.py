import pytest

from instseg.config import AugmentConfig, ConfigError, ScheduleConfig, TrainConfig, from_dict, load_yaml, save_yaml


def test_train_config_roundtrips_through_yaml(tmp_path):
    cfg = TrainConfig(data=tmp_path / "data.yaml", epochs=3, augment=AugmentConfig(mosaic=0.5),
                      schedule=ScheduleConfig(recipe="step", lr0=0.005))
    save_yaml(cfg, tmp_path / "config.yaml")
    back = load_yaml(TrainConfig, tmp_path / "config.yaml")
    assert back == cfg


@pytest.mark.parametrize(
    "cls,kwargs,needle",
    [
        (AugmentConfig, {"fliplr": 1.5}, "fliplr"),
        (AugmentConfig, {"recipe": "fancy"}, "recipe"),
        (ScheduleConfig, {"recipe": "linear"}, "schedule"),
        (ScheduleConfig, {"optimizer": "lion"}, "optimizer"),
        (TrainConfig, {"imgsz": 100}, "imgsz"),
        (TrainConfig, {"best_metric": "loss"}, "best_metric"),
    ],
)
def test_invalid_values_name_the_option(cls, kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        cls(**kwargs)


def test_unknown_keys_are_listed():
    with pytest.raises(ConfigError, match=r"unknown TrainConfig key 'epochz' \(did you mean 'epochs'\?\); valid: data,"):
        from_dict(TrainConfig, {"epochz": 3})


def test_presets_are_the_top_level_configs_folder_and_packaged():
    """configs/ is the single copy: the package reaches it (symlink here, package data in a wheel)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from instseg.config import configs_dir, recipe_names

    repo = Path(__file__).resolve().parents[1]
    if not (repo / "configs").is_dir():
        pytest.skip("not a source checkout")
    assert configs_dir() == (repo / "configs").resolve()
    patterns = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["instseg"]
    files = [p.relative_to(repo).as_posix() for p in (repo / "configs").rglob("*") if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), files
    assert {"ultralytics", "warmup-cosine", "step", "upstream"} <= set(recipe_names())


def test_registry_lookups_name_the_choices_and_the_closest():
    from instseg.config import UnknownChoiceError
    from instseg.models.registry import get_architecture, get_size

    with pytest.raises(UnknownChoiceError, match=r"unknown architecture 'solov3' \(did you mean 'solov2'\?\); "
                                                 r"valid: (.*, )?maskrcnn, rtmdet-ins, solov2"):
        get_architecture("solov3")
    with pytest.raises(KeyError, match=r"unknown size 'tinyy' for rtmdet-ins \(did you mean 'tiny'\?\)"):
        get_size("rtmdet-ins", "tinyy")
    assert str(UnknownChoiceError("x y")) == "x y"  # printed without KeyError's quotes


@pytest.mark.parametrize("text,needle", [
    ("backend: native\ndefault_size: a\nsizes: {a: {}}\nfoo: 1\n", "unknown keys ['foo']"),
    ("backend: native\ndefault_size: b\nsizes: {a: {}}\n", "default_size 'b' is not one of its sizes"),
    ("backend: native\ndefault_size: a\ndefault_schedule: stepp\nsizes: {a: {}}\n", "did you mean 'step'"),
    ("backend: native\ndefault_size: a\ntrain_defaults: {epochs: 3}\nsizes: {a: {}}\n", "default is unset"),
    ("backend: native\ndefault_size: a\ntrain_defaults: {clip_gradd: 3}\nsizes: {a: {}}\n", "clip_grad"),
    ("backend: native\nsizes: {a: {}}\n", "missing key 'default_size'"),
])
def test_bad_model_files_name_the_file(tmp_path, text, needle):
    from instseg.models.registry import parse_architecture

    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        parse_architecture(path)
    assert needle in str(e.value)
