"""`instseg train --config FILE [KEY=VALUE] [flags]`: a run's config.yaml reproduces it; precedence; errors."""

from __future__ import annotations

import csv
import re

import pytest
import yaml
from typer.testing import CliRunner

from instseg.cli import app
from instseg.config import AugmentConfig, ConfigError, ScheduleConfig, TrainConfig, field_default, load_run_config, save_yaml
from instseg.config_help import settings_help

runner = CliRunner()


def _ok(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _rows(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("time", "time/val")} for r in csv.DictReader(f)]


@pytest.mark.slow  # ~8 s: two tiny 2-epoch runs
def test_a_runs_config_yaml_reproduces_its_results(demo_data, tmp_path, tiny_arch):
    _ok("train", "--data", demo_data, "-a", "tiny-test", "--imgsz", "64", "--epochs", "2", "--batch", "2",
        "--device", "cpu", "--workers", "0", "--project", tmp_path, "--name", "a", "--deterministic", "--quiet",
        "--lr", "0.02", "mosaic=0.5", "--max-det", "20")
    first = tmp_path / "a"
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["schedule"]["lr0"] == 0.02 and saved["augment"]["mosaic"] == 0.5 and saved["max_det"] == 20
    _ok("train", "--config", first / "config.yaml", "--name", "b")
    again = tmp_path / "b"
    a, b = _rows(first / "results.csv"), _rows(again / "results.csv")
    assert len(a) == 2 and a == b  # every column but time, to the printed digit
    assert yaml.safe_load((again / "config.yaml").read_text()) == {**saved, "name": "b"}


def _resolved(*args) -> dict:
    return yaml.safe_load(_ok("train", "--dry-run", *args))


def test_precedence_defaults_file_key_value_flags(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("data: d.yaml\narchitecture: rtmdet-ins\nepochs: 7\nworkers: 1\nseed: 3\n"
                 "augment: {mosaic: 0.25, close_mosaic: 2}\nschedule: {recipe: step}\n")
    base = _resolved("--config", f)
    # the file wins over every default, a flag left at its default changes nothing
    assert (base["epochs"], base["workers"], base["seed"], base["architecture"]) == (7, 1, 3, "rtmdet-ins")
    assert base["augment"]["mosaic"] == 0.25 and base["augment"]["close_mosaic"] == 2
    assert base["schedule"]["recipe"] == "step" and base["augment"]["hsv_h"] == field_default("augment", "hsv_h")
    assert _resolved("--config", f, "epochs=5")["epochs"] == 5  # KEY=VALUE over the file
    assert _resolved("--config", f, "epochs=5", "--epochs", "6")["epochs"] == 6  # a flag over KEY=VALUE
    assert _resolved("--config", f, "--mosaic", "0.75", "mosaic=0.5")["augment"]["mosaic"] == 0.75
    assert _resolved("--config", f, "--schedule", "ultralytics")["schedule"]["recipe"] == "ultralytics"
    both = _resolved("--config", f, "--no-amp", "--cos-lr", "--clip-grad=3", "--exist-ok")
    assert both["amp"] is False and both["schedule"]["cos_lr"] is True and both["schedule"]["clip_grad"] == 3.0
    assert both["exist_ok"] is True


def test_unset_flags_take_the_dataclass_defaults():
    cfg = _resolved("--data", "d.yaml", "-a", "solov2")
    for key in ("epochs", "workers", "seed", "name", "patience", "max_det"):
        assert cfg[key] == field_default(None, key), key
    assert cfg["augment"]["close_mosaic"] == field_default("augment", "close_mosaic")


def test_architecture_train_defaults_fill_only_unset_values():
    assert _resolved("--data", "d.yaml", "-a", "maskrcnn")["schedule"]["clip_grad"] == 10.0  # configs/models
    assert _resolved("--data", "d.yaml", "-a", "maskrcnn", "clip_grad=2")["schedule"]["clip_grad"] == 2.0
    assert _resolved("--data", "d.yaml", "-a", "solov2")["schedule"]["clip_grad"] is None  # the recipe decides


def test_help_shows_the_dataclass_defaults_and_help_settings_lists_every_field():
    out = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert f"(default: {field_default(None, 'epochs')})" in out and "(default: exp)" in out
    text = _ok("train", "--help-settings")
    assert text == settings_help(__import__("instseg.cli", fromlist=["_TRAIN_FLAGS"])._TRAIN_FLAGS)
    for key in ("epochs = 100", "augment.mosaic = 1.0", "schedule.gamma = 0.1", "schedule.recipe = unset",
                "Turn mosaic (and mixup) off for the last N epochs.", "(--lr)"):
        assert key in text, key
    n_fields = sum(len(c.__dataclass_fields__) for c in (TrainConfig, AugmentConfig, ScheduleConfig)) - 2
    documented = re.findall(r"^  (\S+) = .*\n      (.+)$", text, flags=re.M)
    assert len(documented) == n_fields and all(doc.strip() for _, doc in documented)


@pytest.mark.parametrize("content,needle", [
    (None, "run config not found"),
    ("", "is empty"),
    ("- a\n- b\n", "must be a mapping"),
    ("epochs: 3\naugment: {mosaic: [\n", ":3: not valid YAML"),
    ("epochs: 3\nepochz: 4\n", ":2: unknown TrainConfig key 'epochz' (did you mean 'epochs'?)"),
    ("augment:\n  mosiac: 0.5\n", ":2: unknown AugmentConfig key 'augment.mosiac' (did you mean 'mosaic'?)"),
    ("epochs: many\n", "epochs takes a int"),
    ("augment: 3\n", "augment must be a mapping"),
    ("augment: {fliplr: 2}\n", "fliplr=2.0 is out of range"),
    ("schedule: {recipe: linear}\n", "unknown schedule recipe 'linear'"),
])
def test_bad_config_files_name_the_file_and_line(tmp_path, content, needle):
    f = tmp_path / "run.yaml"
    if content is not None:
        f.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_run_config(f)
    assert str(f) in str(e.value) and needle in str(e.value)
    result = runner.invoke(app, ["train", "--config", str(f), "--dry-run"])
    assert result.exit_code != 0 and needle in str(result.exception)


def test_a_config_file_does_not_resume_or_dry_run(tmp_path):
    f = tmp_path / "c.yaml"
    save_yaml(TrainConfig(data=tmp_path / "d.yaml", resume=tmp_path / "last.pt", dry_run=True, epochs=4), f)
    cfg = load_run_config(f)
    assert cfg.resume is None and cfg.dry_run is False and cfg.epochs == 4
