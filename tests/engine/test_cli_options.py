"""`instseg train` options and KEY=VALUE overrides reach the resolved config; bad values name the option."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from instseg.cli import app
from instseg.config import ConfigError, TrainConfig, apply_overrides

runner = CliRunner()


def _dry_run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["train", "--data", "data.yaml", "--dry-run", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args,section,key,value",
    [
        (["--mosaic", "0.25"], "augment", "mosaic", 0.25),
        (["--mixup", "0.1"], "augment", "mixup", 0.1),
        (["--degrees", "2"], "augment", "degrees", 2.0),
        (["--augment", "torchvision"], "augment", "recipe", "torchvision"),
        (["hsv_h=0.02"], "augment", "hsv_h", 0.02),
        (["shear=3", "perspective=0.0005"], "augment", "perspective", 0.0005),
        (["brightness_contrast_p=0.3"], "augment", "brightness_contrast_p", 0.3),
        (["min_area=9"], "augment", "min_area", 9),
        (["schedule.recipe=warmup-cosine"], "schedule", "recipe", "warmup-cosine"),
        (["nbs=32"], "schedule", "nbs", 32),
        (["--schedule", "step", "gamma=0.5"], "schedule", "gamma", 0.5),
        (["--lr", "0.003"], "schedule", "lr0", 0.003),
        (["val_conf=0.01"], None, "val_conf", 0.01),
    ],
)
def test_options_reach_the_resolved_config(args, section, key, value):
    code, out = _dry_run("-a", "rtmdet-ins", *args)
    assert code == 0, out
    cfg = yaml.safe_load(out)
    got = cfg[section][key] if section else cfg[key]
    assert got == value
    assert cfg["model"] == "tiny" and cfg["imgsz"] == 640  # registry defaults are filled in


def test_unset_options_keep_the_defaults():
    code, out = _dry_run("-a", "solov2")
    cfg = yaml.safe_load(out)
    assert code == 0
    assert cfg["augment"]["mosaic"] == 1.0 and cfg["augment"]["fliplr"] == 0.5
    assert cfg["schedule"]["recipe"] is None  # the architecture's recipe decides


@pytest.mark.parametrize(
    "args,needle",
    [
        (["fliplr=1.5"], "fliplr"),
        (["--mosaic", "2"], "mosaic"),
        (["recipe=step"], "augment.recipe, schedule.recipe"),
        (["hsvh=0.1"], "unknown setting 'hsvh'"),
        (["mosaic"], "not KEY=VALUE"),
        (["schedule.recipe=linear"], "schedule"),
    ],
)
def test_bad_values_exit_nonzero_naming_the_option(args, needle):
    result = runner.invoke(app, ["train", "--data", "data.yaml", "--dry-run", *args])
    assert result.exit_code != 0
    assert needle in str(result.exception) or needle in result.output


def test_overrides_keep_paths_and_validate():
    cfg = apply_overrides(TrainConfig(), ["weights=w.pt", "augment.recipe=none", "epochs=3"])
    assert str(cfg.weights) == "w.pt" and cfg.augment.recipe == "none" and cfg.epochs == 3
    with pytest.raises(ConfigError, match="epochs"):
        apply_overrides(TrainConfig(), ["epochs=0"])


def test_yolo_dry_run_prints_the_ultralytics_arguments():
    pytest.importorskip("ultralytics", reason="the yolo extra is not installed")
    code, out = _dry_run("-a", "yolo11-seg", "-m", "n", "hsv_s=0.5", "--mixup", "0.2")
    assert code == 0, out
    resolved, ultra = out.split("# ultralytics: framework train arguments")
    args = yaml.safe_load(ultra)
    assert args["hsv_s"] == 0.5 and args["mixup"] == 0.2 and args["epochs"] == 100


def test_dry_run_shows_the_resolved_schedule_as_comments(demo_data):
    """The recipe's numbers (optimizer auto -> AdamW for a short run, its lr0, warmup) are visible before
    training, below the config, as comments: the output stays one YAML document."""
    result = runner.invoke(app, ["train", "--data", str(demo_data), "-a", "rtmdet-ins", "--epochs", "3",
                                 "--batch", "4", "--dry-run"])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.output)
    assert cfg["schedule"]["optimizer"] is None and "recipe" not in cfg  # the comments add no keys
    block = [line[4:] for line in result.output.splitlines() if line.startswith("#   ")]
    resolved = yaml.safe_load("\n".join(block))
    assert resolved["recipe"] == "ultralytics" and resolved["optimizer"] == "AdamW" and resolved["epochs"] == 3
    assert resolved["lr0"] > 0 and resolved["nb"] >= 1 and "batch 4, 3 epochs" in result.output


def test_dry_run_without_a_readable_dataset_says_when_the_schedule_is_resolved():
    code, out = _dry_run("-a", "solov2")
    assert code == 0 and "# schedule: resolved when the dataset can be read" in out and "data.yaml" in out
