"""The Ultralytics backend: config mapping, refused options, offline behaviour, a tiny real training run."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from instseg.backends import ultralytics as ub
from instseg.contract import PredictConfig
from instseg.backends.ultralytics_args import (SAME_NAME_AUGMENT, instseg_results_row, model_stem,
                                               resolve_ultralytics_args)
from instseg.config import AugmentConfig, ConfigError, ScheduleConfig, TrainConfig
from instseg.rundir import RunDir
from instseg.errors import DatasetError, WeightsError

HAS_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None
needs_ultralytics = pytest.mark.skipif(not HAS_ULTRALYTICS, reason="ultralytics is not installed "
                                       "(pip install 'instseg[yolo]'; `make test` installs it)")


def _cfg(**kw) -> TrainConfig:
    kw.setdefault("architecture", "yolo11-seg")
    kw.setdefault("model", "n")
    return TrainConfig(**kw)


# ------------------------------------------------------------------------------------------ pure mapping
@pytest.mark.parametrize("arch,size,stem", [("yolo11-seg", "n", "yolo11n-seg"),
                                            ("yolo11-seg", "x", "yolo11x-seg"),
                                            ("yolo26-seg", "s", "yolo26s-seg")])
def test_model_stem(arch, size, stem):
    assert model_stem(arch, size) == stem


def test_model_stem_unknown_architecture_lists_valid():
    with pytest.raises(ConfigError, match="yolo11-seg, yolo26-seg"):
        model_stem("solov2", "nano")


@pytest.mark.parametrize("kw,expected", [
    ({"epochs": 7}, {"epochs": 7}),
    ({}, {"batch": 16, "imgsz": 640, "device": None, "cache": False, "freeze": None, "pretrained": False,
          "optimizer": "auto", "conf": 0.001, "max_det": 100, "verbose": True, "plots": False}),
    ({"batch": 3, "imgsz": 320}, {"batch": 3, "imgsz": 320}),
    ({"device": "0,1"}, {"device": "0,1"}),
    ({"device": "cpu", "workers": 2, "seed": 5, "deterministic": True, "amp": False},
     {"device": "cpu", "workers": 2, "seed": 5, "deterministic": True, "amp": False}),
    ({"cache": "ram", "patience": 0, "freeze": 10}, {"cache": "ram", "patience": 0, "freeze": 10}),
    ({"pretrained": True}, {"pretrained": True}),
    ({"val_conf": 0.01, "max_det": 300, "quiet": True}, {"conf": 0.01, "max_det": 300, "verbose": False}),
    ({"schedule": ScheduleConfig(optimizer="SGD", lr0=0.02, lrf=0.05, momentum=0.9, weight_decay=1e-4,
                                 warmup_epochs=1.5, warmup_momentum=0.7, warmup_bias_lr=0.05, cos_lr=True,
                                 nbs=32)},
     {"optimizer": "SGD", "lr0": 0.02, "lrf": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
      "warmup_epochs": 1.5, "warmup_momentum": 0.7, "warmup_bias_lr": 0.05, "cos_lr": True, "nbs": 32}),
    ({"schedule": ScheduleConfig(recipe="upstream")}, {"optimizer": "auto"}),
    ({"augment": AugmentConfig(recipe="none", close_mosaic=3)},
     {"mosaic": 0.0, "fliplr": 0.0, "hsv_v": 0.0, "scale": 0.0, "translate": 0.0, "close_mosaic": 3}),
])
def test_resolve_args_table(kw, expected, tmp_path):
    args = resolve_ultralytics_args(_cfg(**kw), tmp_path / "runs" / "exp3")
    assert {k: args[k] for k in expected} == expected
    project = str((tmp_path / "runs").resolve())
    assert (args["project"], args["name"], args["exist_ok"]) == (project, "exp3", True)


@pytest.mark.parametrize("key", ["lr0", "lrf", "momentum", "weight_decay", "warmup_epochs"])
def test_unset_schedule_values_keep_ultralytics_defaults(key, tmp_path):
    assert key not in resolve_ultralytics_args(_cfg(), tmp_path)


@pytest.mark.parametrize("name", SAME_NAME_AUGMENT)
def test_every_same_name_augment_field_passes_through(name, tmp_path):
    value = 7 if name == "close_mosaic" else (0.0005 if name == "perspective" else 0.3)
    args = resolve_ultralytics_args(_cfg(augment=AugmentConfig(**{name: value})), tmp_path)
    assert args[name] == value


def test_default_size_and_unknown_size():
    assert resolve_ultralytics_args(_cfg(model=None, architecture="yolo26-seg"))["batch"] == 16
    with pytest.raises(ConfigError, match="valid: n, s, m, l, x"):
        resolve_ultralytics_args(_cfg(model="tiny"))


@pytest.mark.parametrize("kw,option", [
    ({"schedule": ScheduleConfig(recipe="step")}, "schedule='step'"),
    ({"schedule": ScheduleConfig(recipe="warmup-cosine")}, "schedule='warmup-cosine'"),
    ({"schedule": ScheduleConfig(clip_grad=35.0)}, "clip_grad=35.0"),
    ({"augment": AugmentConfig(recipe="torchvision")}, "augment.recipe='torchvision'"),
    ({"augment": AugmentConfig(brightness_contrast_p=0.5)}, "brightness_contrast_p=0.5"),
    ({"augment": AugmentConfig(min_area=10.0)}, "min_area=10.0"),
    ({"ema": False}, "ema=False"),
    ({"val_period": 2}, "val_period=2"),
])
def test_unexpressible_option_is_an_error_naming_it(kw, option):
    with pytest.raises(ConfigError) as e:
        resolve_ultralytics_args(_cfg(**kw))
    assert option in str(e.value) and "Ultralytics" in str(e.value)


def test_results_row_maps_ultralytics_columns():
    metrics = {"train/box_loss": 1.5, "train/seg_loss": 2.0, "train/cls_loss": 0.5,
               "metrics/mAP50(B)": 0.6, "metrics/mAP50-95(B)": 0.4, "metrics/mAP50(M)": 0.5,
               "metrics/mAP50-95(M)": 0.3, "val/box_loss": 9.0,
               "lr/pg0": 0.01, "lr/pg1": 0.02, "lr/pg2": 0.03}
    row = instseg_results_row(3, 12.3456, metrics, {"segm_mAP75": 0.25, "bbox_mAP75": 0.35}, val_seconds=2.0)
    assert row["epoch"] == 3 and row["time"] == 12.346 and row["time/val"] == 2.0
    assert row["train/loss"] == pytest.approx(4.0)
    assert (row["lr/pg0"], row["lr/pg2"]) == (0.01, 0.03)
    assert (row["metrics/segm_mAP"], row["metrics/segm_mAP50"], row["metrics/segm_mAP75"]) == (0.3, 0.5, 0.25)
    assert (row["metrics/bbox_mAP"], row["metrics/bbox_mAP50"], row["metrics/bbox_mAP75"]) == (0.4, 0.6, 0.35)
    assert row["metrics/fitness"] == pytest.approx(0.1 * 0.5 + 0.9 * 0.3)
    assert "val/box_loss" not in row and row["train/seg_loss"] == 2.0


def test_results_row_without_validation_leaves_metrics_empty():
    row = instseg_results_row(1, 1.0, {"train/box_loss": 1.0})
    assert row["metrics/segm_mAP"] is None and "metrics/fitness" not in row and row["time/val"] is None


# --------------------------------------------------------------------------------- availability, errors
def test_available_message_when_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "ultralytics" else real(n, *a))
    assert ub.available() == "ultralytics is not installed: pip install 'instseg[yolo]'"


def test_available_does_not_import_ultralytics():
    code = ("import sys, instseg.backends.ultralytics as u; u.available(); "
            "print('ultralytics' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


@needs_ultralytics
def test_dry_run_prints_args_and_trains_nothing(tmp_path, capsys):
    res = ub.train(_cfg(data=tmp_path / "data.yaml", dry_run=True, epochs=3), RunDir(tmp_path / "exp"))
    out = capsys.readouterr().out
    assert "Ultralytics train arguments" in out and "epochs: 3" in out and "mosaic: 1.0" in out
    assert res.best is None and not (tmp_path / "exp").exists()


@needs_ultralytics
def test_coco_json_input_is_refused_with_the_conversion_command(tmp_path):
    with pytest.raises(DatasetError, match="coco2yolo"):
        ub.train(_cfg(data=tmp_path / "ann.json"), RunDir(tmp_path / "exp"))


@needs_ultralytics
def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        ub.model_source(_cfg(weights=tmp_path / "nope.pt"))


@needs_ultralytics
@pytest.mark.parametrize("best_metric,expected", [
    ("segm_mAP", [0.3, 0.2, 0.4]), ("bbox_mAP", [0.5, 0.6, 0.1]), ("fitness", [0.8, 0.8, 0.5]),
])
def test_best_metric_drives_best_fitness(best_metric, expected):
    from instseg.backends.ultralytics_args import FITNESS_KEYS
    from instseg.backends.ultralytics_trainer import make_trainer_class

    rounds = [{"metrics/mAP50-95(M)": 0.3, "metrics/mAP50-95(B)": 0.5, "fitness": 0.8},
              {"metrics/mAP50-95(M)": 0.2, "metrics/mAP50-95(B)": 0.6, "fitness": 0.8},
              {"metrics/mAP50-95(M)": 0.4, "metrics/mAP50-95(B)": 0.1, "fitness": 0.5}]
    cls = make_trainer_class(FITNESS_KEYS[best_metric])
    trainer = cls.__new__(cls)  # the validate() bookkeeping only, without building a dataset
    import torch

    trainer.ema, trainer.world_size, trainer.best_fitness, trainer.loss = None, 1, None, torch.tensor(9.0)
    fitnesses, bests = [], []
    for metrics in rounds:
        trainer.validator = lambda _t, m=dict(metrics): m
        _, fitness = trainer.validate()
        fitnesses.append(fitness)
        bests.append(trainer.best_fitness)
    assert fitnesses == pytest.approx(expected)
    assert bests == pytest.approx([max(expected[:i + 1]) for i in range(3)])


@needs_ultralytics
@pytest.mark.parametrize("arch,size", [("yolo11-seg", "n"), ("yolo26-seg", "n"), ("yolo11-seg", "s")])
def test_registry_params_match_the_model_yaml(arch, size):
    from ultralytics.nn.tasks import SegmentationModel

    from instseg.models.registry import get_size

    ub.configure_offline()
    model = SegmentationModel(f"{model_stem(arch, size)}.yaml", nc=80, verbose=False)
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    assert get_size(arch, size).params_m == pytest.approx(params_m, abs=0.006)


@pytest.mark.parametrize("content", [b"not a zip", None])
def test_is_ultralytics_checkpoint_rejects_other_files(content, tmp_path):
    import torch

    path = tmp_path / "w.pt"
    if content is None:
        torch.save({"model": {"w": torch.zeros(2)}, "architecture": "solov2"}, path)  # an instseg-style file
    else:
        path.write_bytes(content)
    assert ub.is_ultralytics_checkpoint(path) is False


class _NetworkLog:
    """Replaces socket connections and DNS with a recorder that fails, as a machine without network."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []

        def refuse(name):
            def fn(*args, **kwargs):
                self.calls.append(f"{name}{args[1:2] if name == 'connect' else args[:1]}")
                raise OSError(f"network disabled by the test ({name})")
            return fn

        monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
        monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
        monkeypatch.setattr(socket.socket, "connect", refuse("connect"))


@needs_ultralytics
def test_pretrained_offline_names_the_file_to_place(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    net = _NetworkLog(monkeypatch)
    with pytest.raises(WeightsError) as e:
        ub.model_source(_cfg(architecture="yolo26-seg", model="m", pretrained=True))
    assert net.calls and all("github.com" in c for c in net.calls)  # only instseg's own download try
    msg = str(e.value)
    assert "yolo26m-seg.pt" in msg and str(tmp_path / "hub" / "checkpoints" / "yolo26m-seg.pt") in msg
    assert "https://github.com/ultralytics/assets/releases/download/v8.4.0/yolo26m-seg.pt" in msg


@needs_ultralytics
@pytest.mark.parametrize("kw,expected", [
    ({}, "yolo11n-seg.yaml"),
    ({"architecture": "yolo26-seg", "model": "l"}, "yolo26l-seg.yaml"),
    ({"pretrained": True}, "HUB/checkpoints/yolo11n-seg.pt"),
    ({"weights": Path("mine.pt"), "pretrained": True}, "CWD/mine.pt"),
])
def test_model_source_table(kw, expected, tmp_path, monkeypatch):
    import torch

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / "yolo11n-seg.pt").write_bytes(b"placed by the user")
    (tmp_path / "mine.pt").write_bytes(b"x")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.chdir(tmp_path)
    net = _NetworkLog(monkeypatch)
    if "weights" in kw:
        kw = {**kw, "weights": tmp_path / kw["weights"]}
    got = ub.model_source(_cfg(**kw))
    assert got == expected.replace("HUB", str(hub)).replace("CWD", str(tmp_path))
    assert net.calls == []


# ---------------------------------------------------------------------------------------- real training
@pytest.fixture(scope="module")
def tiny_fire(fire_seg, tmp_path_factory) -> Path:
    """8 train and 4 val images of fire-seg in a Roboflow-style folder of their own (Ultralytics writes its
    label caches beside the labels, so the shared dataset is not touched)."""
    root = tmp_path_factory.mktemp("tiny_fire")
    for split, n in (("train", 8), ("valid", 4)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        labelled = sorted(p for p in (fire_seg / split / "labels").glob("*.txt") if p.stat().st_size > 0)[:n]
        for label in labelled:
            image = next((fire_seg / split / "images").glob(label.stem + ".*"))
            shutil.copy(image, root / split / "images" / image.name)
            shutil.copy(label, root / split / "labels" / label.name)
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['fire']\n")
    return root / "data.yaml"


def metrics_timing(run):
    return json.loads(run.metrics_json.read_text())["timing"]


@pytest.mark.slow
@needs_ultralytics
def test_train_predict_evaluate_offline(tiny_fire, tmp_path, monkeypatch):
    from instseg.data.checks import load_split
    from instseg.data.coco import records_to_coco
    from instseg.evaluation import evaluate

    net = _NetworkLog(monkeypatch)
    cfg = _cfg(data=tiny_fire, epochs=1, batch=4, imgsz=64, device="cpu", workers=0, quiet=True)
    run = RunDir(tmp_path / "yolo11-seg-n" / "exp")
    res = ub.train(cfg, run)
    assert net.calls == []  # nothing tried to reach the network

    assert ub.is_ultralytics_checkpoint(run.best) and ub.is_ultralytics_checkpoint(run.last)
    assert ub.describe_weights(run.best) == {"architecture": "yolo11-seg", "size": "n", "names": ["fire"],
                                             "imgsz": 64}
    for path in (run.best, run.last, run.config_yaml, run.metrics_json, run.val_predictions, run.results_csv,
                 run.root / "ultralytics_results.csv"):
        assert path.is_file(), path
    rows = list(csv.DictReader(run.results_csv.open()))
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and float(rows[0]["train/loss"]) > 0
    # per-epoch seconds as the native trainer writes them: training alone, and its validation apart
    assert float(rows[0]["time"]) > 0 and float(rows[0]["time/val"]) > 0
    assert float(rows[0]["time"]) + float(rows[0]["time/val"]) <= metrics_timing(run)["train_s"]
    assert {"train/seg_loss", "lr/pg0", "metrics/segm_mAP", "metrics/bbox_mAP75"} <= set(rows[0])
    metrics = json.loads(run.metrics_json.read_text())
    assert res.epochs_done == 1 and not res.stopped_early and res.best == run.best
    assert set(metrics["ultralytics_metrics"]) >= {"mask_mAP50-95", "box_mAP50-95"}
    # Ultralytics' numbers of best.pt are those of its epoch (no second Ultralytics pass over val)
    ul_rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader((run.root / "ultralytics_results.csv").open())]
    assert metrics["ultralytics_metrics"]["mask_mAP50-95"] == pytest.approx(float(ul_rows[0]["metrics/mAP50-95(M)"]),
                                                                            abs=1e-5)
    assert "Ultralytics' validator" in metrics["note"] and metrics["num_images"] == 4

    # both evaluators agree on the written results, and with metrics.json
    records, _ = load_split(tiny_fire, "val")
    for i, r in enumerate(records):
        r.image_id = i + 1
    gt = records_to_coco(records, ["fire"])
    results = json.loads(run.val_predictions.read_text())
    assert results and all(r["category_id"] == 1 for r in results)
    fast, ref = (evaluate(gt, results, engine=e).to_dict() for e in ("faster", "pycocotools"))
    for key in ("segm_mAP", "segm_mAP50", "bbox_mAP", "segm_AR100"):
        assert fast[key] == pytest.approx(ref[key], abs=1e-4)
        assert metrics[key] == pytest.approx(fast[key], abs=1e-9)

    # predict(): original size RLE masks, 0-based labels, scores sorted and above conf
    pcfg = PredictConfig(imgsz=64, conf=0.001, max_det=5)
    preds = ub.predict(run.best, [r.path for r in records[:2]], pcfg)
    assert [(p.height, p.width) for p in preds] == [(r.height, r.width) for r in records[:2]]
    assert sum(len(p) for p in preds) > 0
    for p in preds:
        assert len(p) <= 5 and len(p.masks) == len(p) and (p.labels == 0).all() and (p.scores >= 0.001).all()
        assert all(m["size"] == [p.height, p.width] for m in p.masks)
    assert net.calls == []

    # the CLI routes an Ultralytics best.pt to this backend: `instseg eval --weights` and `instseg predict`
    from typer.testing import CliRunner

    from instseg.cli import app

    runner = CliRunner()
    out_json = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", "--weights", str(run.best), "--data", str(tiny_fire), "--split", "val",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"{metrics['segm_mAP']:.3f}" in result.output  # the same numbers as the run's metrics.json
    result = runner.invoke(app, ["predict", "--weights", str(run.best), "--source", str(records[0].path),
                                 "--out", str(tmp_path / "preds"), "--conf", "0.001", "--no-overlays"])
    assert result.exit_code == 0, result.output
    assert any((tmp_path / "preds").glob("*.json"))
    assert net.calls == []
