"""The search-space file: parsing, validation against the config schema, and the trial/result helpers
(no Ray needed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from instseg.config import TrainConfig
from instseg.tune.results import pick_best, trial_rows
from instseg.tune.space import SpaceError, apply_sample, load_space, parse_space, validate_space
from instseg.tune.trial import epoch_report

REPO = Path(__file__).resolve().parents[2]
BASE = TrainConfig(architecture="rtmdet-ins", model="tiny", epochs=2, imgsz=64)


def test_default_space_validates_and_covers_the_issue_settings():
    dists = load_space(REPO / "configs/tune/default.yaml", BASE)
    keys = [d.key for d in dists]
    assert keys == ["lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "hsv_h", "hsv_s", "hsv_v",
                    "degrees", "translate", "scale", "fliplr", "mosaic", "mixup", "copy_paste"]
    lr0 = dists[0]
    assert (lr0.kind, lr0.args) == ("loguniform", (0.0005, 0.02))


def test_unknown_key_names_the_line_and_the_valid_settings(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("lr0: {loguniform: [0.001, 0.01]}\nmosiac: {uniform: [0, 1]}\n")
    with pytest.raises(SpaceError) as e:
        load_space(f, BASE)
    msg = str(e.value)
    assert f"{f}:2: unknown setting 'mosiac'" in msg
    assert "mosaic" in msg and "hsv_h" in msg and "lr0" in msg


@pytest.mark.parametrize("text, expected", [
    ("fliplr: {uniform: [0.0, 1.5]}", "fliplr: uniform [0.0, 1.5] reaches 1.5"),  # the schema's [0, 1]
    ("scale: {uniform: [0.1, 0.99]}", "scale: uniform [0.1, 0.99] reaches 0.99"),
    ("lrf: {uniform: [0.0, 2]}", "reaches 2"),
    ("optimizer: {choice: [SGD, Lion]}", "reaches 'Lion'"),
    ("lr0: {loguniform: [0, 0.1]}", "loguniform needs lo > 0"),
    ("mosaic: {uniform: [0.8, 0.2]}", "needs lo < hi"),
    ("close_mosaic: {int: [0.5, 3]}", "int takes [lo, hi] as integers"),
    ("mosaic: {normal: [0, 1]}", "is not one distribution"),
    ("mosaic: 0.5", "is not one distribution"),
    ("epochs: {int: [1, 10]}", "set by the search itself"),
    ("- lr0", "not valid YAML"),
])
def test_bad_space_is_one_line_naming_the_setting(tmp_path, text, expected):
    f = tmp_path / "s.yaml"
    f.write_text(f"hsv_h: {{uniform: [0, 0.05]}}\n{text}\n")
    with pytest.raises(SpaceError) as e:
        load_space(f, BASE)
    assert expected in str(e.value)
    assert "\n" not in str(e.value)
    assert f"{f}:2:" in str(e.value)


@pytest.mark.parametrize("text", ["- lr0\n- mosaic\n", "", "0.5\n"])
def test_a_space_that_is_not_a_mapping(tmp_path, text):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(SpaceError, match="a search space is a mapping of settings to distributions"):
        load_space(f, BASE)


def test_a_missing_space_file_names_the_shipped_one(tmp_path):
    with pytest.raises(SpaceError, match="configs/tune/default.yaml"):
        load_space(tmp_path / "nope.yaml", BASE)


def test_a_valid_space_samples_into_the_config():
    dists = parse_space("lr0: {loguniform: [0.001, 0.1]}\noptimizer: {choice: [SGD, AdamW]}\n"
                        "close_mosaic: {int: [0, 3]}\naugment.recipe: {choice: [ultralytics, none]}\n")
    validate_space(dists, BASE)
    cfg = apply_sample(BASE, dists, {"lr0": 0.004, "optimizer": "AdamW", "close_mosaic": 2,
                                     "augment.recipe": "none"})
    assert (cfg.schedule.lr0, cfg.schedule.optimizer, cfg.augment.close_mosaic, cfg.augment.recipe) == \
        (0.004, "AdamW", 2, "none")
    assert (cfg.architecture, cfg.epochs, cfg.imgsz) == ("rtmdet-ins", 2, 64)


def test_epoch_report_maps_engine_and_results_names():
    r = epoch_report(2, {"segm_mAP": 0.25, "metrics/bbox_mAP": 0.5, "train/loss": 3.0, "lr/pg0": 0.01})
    assert r == {"epoch": 2, "segm_mAP": 0.25, "bbox_mAP": 0.5, "train_loss": 3.0}


def _result(trial, epoch, final, loss, lr0, error=None):
    m = {"trial_id": trial, "epoch": epoch, "train_loss": loss, "segm_mAP": 0.1 * epoch, "run": f"/x/{trial}"}
    if final:
        m["final"] = True
    return SimpleNamespace(metrics=m, config={"lr0": lr0}, error=error, path=f"/ray/run_trial_{trial}")


def test_trial_rows_status_and_best_prefers_completed_trials():
    grid = [_result("b", 1, False, 1.0, 0.01), _result("a", 2, True, 2.0, 0.02),
            _result("c", 2, True, 1.5, 0.03), SimpleNamespace(metrics={}, config={}, error=None, path="/ray/t_d")]
    rows = trial_rows(grid, ["lr0"], epochs=2, ray_status={"t_d": "PENDING"})
    assert [(r["trial"], r["status"], r["epochs"], r["stopped_early"]) for r in rows] == [
        ("a", "completed", 2, False), ("b", "stopped (ASHA)", 1, True), ("c", "completed", 2, False),
        ("t_d", "pending", 0, False)]
    # the same last result of a trial Ray still counts as running: interrupted, not stopped
    assert trial_rows(grid[:1], ["lr0"], 2, {"b": "RUNNING"})[0]["status"] == "interrupted"
    # the stopped trial has the lowest loss, but only trials that ran every epoch compete
    assert pick_best(rows, "train_loss", "min")["trial"] == "c"
    assert pick_best(rows, "segm_mAP", "max")["trial"] == "c"  # a tie at 0.2: the lower loss


def test_without_ray_the_message_names_the_extra(monkeypatch):
    import importlib.util

    from instseg.errors import BackendUnavailable
    from instseg.tune import runner

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(BackendUnavailable, match=r"needs ray: pip install 'instseg\[tune\]'"):
        runner._require_ray()


def test_cli_bad_space_is_one_line_before_ray_starts(tmp_path):
    import subprocess
    import sys

    from instseg.data.demo import make_demo_dataset

    data = make_demo_dataset(tmp_path / "d", n_train=1, n_val=1, imgsz=64)
    space = tmp_path / "space.yaml"
    space.write_text("lr0: {loguniform: [0.001, 0.01]}\nmosaic: {uniform: [0, 2]}\n")
    p = subprocess.run([sys.executable, "-m", "instseg", "tune", "--data", str(data), "--space", str(space),
                        "--project", str(tmp_path / "t")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert f"error: {space}:2: mosaic: uniform [0, 2] reaches 2" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "t").exists()


def test_best_breaks_ties_by_box_map_then_loss():
    rows = [{"trial": t, "status": "completed", "segm_mAP": 0.0, "bbox_mAP": b, "train_loss": l}
            for t, b, l in (("a", 0.01, 3.0), ("b", 0.02, 3.5), ("c", 0.02, 3.1))]
    assert pick_best(rows, "segm_mAP", "max")["trial"] == "c"
    assert pick_best(rows, "train_loss", "min")["trial"] == "a"


def test_default_space_is_the_packaged_one_from_any_folder(tmp_path, monkeypatch):
    """Outside a checkout there is no ./configs/: the default comes from the package's data."""
    from instseg.presets import configs_dir
    from instseg.tune.space import default_space

    monkeypatch.chdir(tmp_path)
    assert default_space().is_absolute() and default_space() == configs_dir() / "tune" / "default.yaml"
    assert [d.key for d in load_space(None, BASE)] == [d.key for d in load_space(default_space(), BASE)]


def test_cli_tune_default_space_from_a_tmp_folder(tmp_path, monkeypatch, demo_data):
    """`instseg tune` without --space, run away from the repository, gets past the space (up to Ray)."""
    from typer.testing import CliRunner

    from instseg.cli import app
    from instseg.errors import InstsegError
    from instseg.tune import runner

    def stop():
        raise InstsegError("stopped where Ray would start")

    monkeypatch.setattr(runner, "_require_ray", stop)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["tune", "--data", str(demo_data), "-a", "rtmdet-ins", "-m", "tiny",
                                      "--trials", "1", "--epochs", "1"])
    assert isinstance(result.exception, InstsegError), result.output
    assert str(result.exception) == "stopped where Ray would start"  # not "no such search-space file"
