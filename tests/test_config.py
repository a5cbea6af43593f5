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
