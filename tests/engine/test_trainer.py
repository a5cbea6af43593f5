"""The training loop on a tiny contract model: run folder, exact resume after a crash, NaN stop, patience."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from instseg.config import ScheduleConfig, TrainConfig
from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.logger import FIXED_COLUMNS, fitness_of
from instseg.engine.setup import resume_config
from instseg.engine.trainer import Trainer, train
from instseg.errors import TrainingError, WeightsError


def _cfg(data, tmp_path, name="exp", epochs=3, **kw):
    return TrainConfig(data=data, architecture="tiny-test", epochs=epochs, imgsz=64, batch=4, device="cpu",
                       workers=0, project=tmp_path, name=name, quiet=True, deterministic=True, val_period=1,
                       schedule=ScheduleConfig(recipe="step", lr0=0.05), **kw)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Crash(RuntimeError):
    pass


def test_run_folder_contents(demo_data, tmp_path, tiny_arch):
    result = train(_cfg(demo_data, tmp_path, epochs=2))
    run = result.run
    assert run.root == tmp_path / "exp" and result.epochs_done == 2
    rows = _rows(run.results_csv)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0])[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert list(rows[0])[len(FIXED_COLUMNS):] == ["train/loss_bce", "train/loss_dice"]
    assert float(rows[0]["train/loss"]) == pytest.approx(
        float(rows[0]["train/loss_bce"]) + float(rows[0]["train/loss_dice"]), rel=1e-5)
    assert rows[1]["metrics/segm_mAP"] != "" and 0 <= float(rows[1]["metrics/segm_mAP50"]) <= 1
    ck = load_checkpoint(run.last)
    assert ck["epoch"] == 1 and ck["architecture"] == "tiny-test" and ck["optimizer"] is not None
    assert load_checkpoint(run.best)["optimizer"] is None
    metrics = json.loads(run.metrics_json.read_text())
    assert {"segm_mAP", "segm_mAP50", "bbox_mAP"} <= set(metrics)
    preds = json.loads(run.val_predictions.read_text())
    assert isinstance(preds, list) and all("segmentation" in p for p in preds)
    assert run.config_yaml.exists() and list(run.root.glob("events.out.tfevents.*"))
    # a second run with the same name goes to exp2
    assert train(_cfg(demo_data, tmp_path, epochs=1)).run.root.name == "exp2"


def test_resume_after_crash_mid_epoch_matches_uninterrupted(demo_data, tmp_path, tiny_arch, monkeypatch):
    ref = train(_cfg(demo_data, tmp_path / "ref", epochs=3))
    import tiny_model

    calls = {"n": 0}
    original = tiny_model.TinySeg.forward_train

    def crashing(self, images, targets):
        calls["n"] += 1
        if calls["n"] == 3 + 2:  # epoch 2 (3 batches of 4 images per epoch), third batch
            raise Crash("killed mid-epoch")
        return original(self, images, targets)

    monkeypatch.setattr(tiny_model.TinySeg, "forward_train", crashing)
    with pytest.raises(Crash):
        train(_cfg(demo_data, tmp_path / "cut", epochs=3))
    monkeypatch.setattr(tiny_model.TinySeg, "forward_train", original)
    last = tmp_path / "cut" / "exp" / "weights" / "last.pt"
    assert load_checkpoint(last)["epoch"] == 0
    cfg, run = resume_config(last)
    resumed = train(cfg, run)
    assert resumed.run.root == tmp_path / "cut" / "exp"
    a, b = _rows(ref.run.results_csv), _rows(resumed.run.results_csv)
    assert [r["epoch"] for r in b] == ["1", "2", "3"]
    for ra, rb in zip(a, b):
        for col in ra:
            if col not in ("time", "time/val"):  # wall clock
                assert ra[col] == rb[col], (ra["epoch"], col)
    wa, wb = load_checkpoint(ref.run.last)["model"], load_checkpoint(resumed.run.last)["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_resume_extends_and_refuses_a_finished_run(demo_data, tmp_path, tiny_arch):
    first = train(_cfg(demo_data, tmp_path, epochs=1))
    with pytest.raises(WeightsError, match="already finished"):
        resume_config(first.run.last)
    cfg, run = resume_config(first.run.last, epochs=2)
    result = train(cfg, run)
    assert [r["epoch"] for r in _rows(result.run.results_csv)] == ["1", "2"]
    assert load_checkpoint(result.run.last)["epoch"] == 1


def _inject_nan(monkeypatch, bad_calls):
    """forward_train returns a NaN loss_dice on the calls (1-based) for which ``bad_calls(n)`` is true."""
    import tiny_model

    calls = {"n": 0}
    original = tiny_model.TinySeg.forward_train

    def nan_at(self, images, targets):
        calls["n"] += 1
        out = original(self, images, targets)
        if bad_calls(calls["n"]):
            out["loss_dice"] = out["loss_dice"] * float("nan")
        return out

    monkeypatch.setattr(tiny_model.TinySeg, "forward_train", nan_at)
    return calls


def test_nan_loss_recovers_with_half_the_learning_rate(demo_data, tmp_path, tiny_arch, monkeypatch, capsys):
    ref = _rows(train(_cfg(demo_data, tmp_path / "ref", epochs=3)).run.results_csv)
    calls = _inject_nan(monkeypatch, lambda n: n == 5)  # epoch 2 (3 batches per epoch), second batch
    result = train(_cfg(demo_data, tmp_path / "nan", epochs=3))
    rows = _rows(result.run.results_csv)
    assert result.epochs_done == 3 and calls["n"] == 3 + 2 + 3 + 3  # epoch 2 was redone from its start
    assert [r["nan_recoveries"] for r in rows] == ["0", "1", "1"]
    assert rows[0]["train/loss"] == ref[0]["train/loss"]  # the same run until the NaN
    for got, want in zip(rows[1:], ref[1:]):  # then the same schedule at half the learning rate
        for g in ("lr/pg0", "lr/pg1", "lr/pg2"):
            assert float(got[g]) == pytest.approx(0.5 * float(want[g]), rel=1e-5)
        assert torch.isfinite(torch.tensor(float(got["train/loss"])))
    err = capsys.readouterr().err
    assert "loss is nan at epoch 2, iteration 1 (global 4)" in err and "recovery 1/3" in err
    assert "optimizer state of the end of epoch 1" in err and "x0.5" in err
    ck = load_checkpoint(result.run.last)
    assert ck["nan_recoveries"] == 1 and ck["lr_scale"] == 0.5  # a resumed run keeps the lower lr


def test_nan_loss_stops_after_three_recoveries_and_keeps_last_good_checkpoint(demo_data, tmp_path, tiny_arch,
                                                                              monkeypatch, capsys):
    calls = _inject_nan(monkeypatch, lambda n: n >= 5)
    with pytest.raises(TrainingError) as e:
        train(_cfg(demo_data, tmp_path, epochs=3))
    msg = str(e.value)
    assert "epoch 2, iteration 0 (global 3)" in msg and "loss_dice=nan" in msg and "last.pt" in msg
    assert "after 3 recoveries" in msg
    assert calls["n"] == 3 + 2 + 3  # epoch 1, two batches up to the first NaN, then one per recovery
    err = capsys.readouterr().err
    assert [f"recovery {k}/3" in err for k in (1, 2, 3)] == [True] * 3 and "x0.125" in err
    assert load_checkpoint(tmp_path / "exp" / "weights" / "last.pt")["epoch"] == 0


def test_patience_stops_early(demo_data, tmp_path, tiny_arch, monkeypatch):
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1])
    monkeypatch.setattr(Trainer, "_validate", lambda self, model: ({"segm_mAP": next(scores), "segm_mAP50": 0.0}, []))
    result = train(_cfg(demo_data, tmp_path, epochs=5, patience=2))
    assert result.stopped_early and result.epochs_done == 3
    assert load_checkpoint(result.best)["epoch"] == 0


@pytest.mark.parametrize("metric,want", [("segm_mAP", 0.3), ("segm_mAP50", 0.6), ("bbox_mAP", 0.2),
                                         ("fitness", 0.1 * 0.6 + 0.9 * 0.3)])
def test_fitness_of(metric, want):
    m = {"segm_mAP": 0.3, "segm_mAP50": 0.6, "bbox_mAP": 0.2}
    assert fitness_of(m, metric) == pytest.approx(want)


def test_final_scoring_reuses_the_best_pass_and_matches_a_fresh_evaluation(demo_data, tmp_path, tiny_arch,
                                                                           monkeypatch):
    import instseg.engine.validate as V
    from instseg.engine.checkpoint import model_state

    calls = {"n": 0}
    original = V.validate

    def counting(*a, **k):
        calls["n"] += 1
        return original(*a, **k)

    monkeypatch.setattr(V, "validate", counting)
    result = train(_cfg(demo_data, tmp_path, epochs=3))
    assert calls["n"] == 3  # one pass per epoch; best.pt is not validated a second time
    run = result.run
    best = load_checkpoint(run.best)
    rows = _rows(run.results_csv)
    metrics = json.loads(run.metrics_json.read_text())
    assert metrics["segm_mAP"] == pytest.approx(float(rows[best["epoch"]]["metrics/segm_mAP"]))
    # what the run wrote for best.pt is what a fresh evaluation of best.pt gives
    import copy

    trainer = Trainer(_cfg(demo_data, tmp_path, name="again", epochs=1))
    model = copy.deepcopy(trainer.eval_model())
    model.load_state_dict(model_state(best))
    fresh, results = trainer._validate(model)
    assert fresh["segm_mAP"] == pytest.approx(metrics["segm_mAP"])
    assert json.loads(run.val_predictions.read_text()) == json.loads(json.dumps(results))
