"""``time`` (hours): the epoch count re-planned from the measured epoch time, the schedule rebuilt for it so
the lr still ends on its final value, a resumed run charged for what it already trained, and the mapping to
Ultralytics' own ``time``."""

from __future__ import annotations

import csv

import pytest

from instseg.config import ConfigError, ScheduleConfig, TrainConfig
from instseg.engine.schedule import lr_at, resolve_schedule
from instseg.engine.time_budget import TimeBudget, planned_epochs, reschedule


@pytest.mark.parametrize("budget, spent, mean, done, want", [
    (360, 100, 100, 1, 3),    # 260 s left: two more whole epochs
    (360, 300, 100, 3, 3),    # 60 s left: stop now
    (360, 400, 100, 4, 4),    # overrun: never negative
    (3600, 10, 10, 1, 360),   # fast epochs plan beyond the initial epoch count
    (100, 50, 25, 2, 4),      # exact fit is kept (floor with tolerance)
])
def test_planned_epochs(budget, spent, mean, done, want):
    assert planned_epochs(budget, spent, mean, done) == want


def test_budget_plans_from_the_mean_epoch_and_counts_earlier_time():
    t = [0.0]
    b = TimeBudget(0.1, clock=lambda: t[0])  # 360 s
    t[0] = 150.0
    assert b.plan(1) == 2 and b.mean_epoch_s == 150.0  # 210 s left: one more
    t[0] = 250.0
    assert b.plan(2) == 2 and b.mean_epoch_s == 125.0  # 110 s left < one mean epoch: stop now
    t[0] = 0.0
    resumed = TimeBudget(0.1, spent_s=300.0, clock=lambda: t[0])  # 3 epochs trained before, 300 s
    t[0] = 20.0
    assert resumed.elapsed_s == 320.0 and resumed.plan(4) == 6  # 40 s left at 20 s an epoch


def test_budget_of_a_resumed_run_reads_results_csv(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("epoch,epochs,time\n1,100,12.5\n2,7,10.0\n")
    assert TimeBudget.for_run(1.0, path).spent_before == 22.5
    assert TimeBudget.for_run(1.0, tmp_path / "missing.csv").spent_before == 0.0


def test_reschedule_keeps_the_optimizer_and_ends_on_the_final_lr():
    kw = dict(architecture="yolo11-seg", default_recipe="ultralytics", nb=5, batch=4, n_train=20, nc=3)
    first = resolve_schedule(ScheduleConfig(), epochs=100, **kw)
    again = reschedule(first, resolve_schedule(ScheduleConfig(), epochs=4, **kw))
    assert (again.epochs, again.optimizer, again.lr0, again.accumulate) == (4, first.optimizer, first.lr0,
                                                                           first.accumulate)
    assert again.warmup_iters == 3 * 5  # min(warmup 3, epochs - 1) epochs, as Ultralytics re-plans it
    plain = resolve_schedule(ScheduleConfig(), epochs=4, **kw)
    assert lr_at(again, 4 * 5 - 1) == pytest.approx(lr_at(plain, 4 * 5 - 1))
    assert lr_at(again, 4 * 5 - 1)[0] == pytest.approx(first.lr0 * (0.25 * 0.99 + 0.01))


def test_time_must_be_positive_and_maps_to_ultralytics_time():
    from instseg.backends.ultralytics_args import resolve_ultralytics_args

    with pytest.raises(ConfigError, match="time=0"):
        TrainConfig(time=0)
    args = resolve_ultralytics_args(TrainConfig(architecture="yolo11-seg", model="n", time=0.25))
    assert args["time"] == 0.25 and resolve_ultralytics_args(TrainConfig(architecture="yolo11-seg"))["time"] is None


def _rows(path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _timed_cfg(data, tmp_path, name, hours, recipe="ultralytics"):
    return TrainConfig(data=data, architecture="tiny-test", epochs=100, time=hours, imgsz=64, batch=4, device="cpu",
                       workers=0, project=tmp_path, name=name, quiet=True, val_period=1, loggers=[],
                       schedule=ScheduleConfig(recipe=recipe))


def test_trainer_stops_within_the_budget_with_a_finished_schedule(demo_data, tmp_path, tiny_arch, monkeypatch):
    """Every epoch 'takes' 100 s (the fake clock reads the epochs finished) of a 250 s budget: 2 epochs of the
    100 asked, the last at the final lr of a 2-epoch schedule."""
    from instseg.engine import time_budget
    from instseg.engine.trainer import Trainer

    trainer = Trainer(_timed_cfg(demo_data, tmp_path, "timed", 250 / 3600))
    monkeypatch.setattr(time_budget.time, "monotonic", lambda: 100.0 * len(_rows(trainer.run.results_csv)))
    result = trainer.fit()
    assert result.epochs_done == 2 and trainer.cfg.epochs == 2 and trainer.schedule.epochs == 2
    rows = _rows(result.run.results_csv)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    nb = trainer.nb
    assert float(rows[-1]["lr/pg0"]) == pytest.approx(lr_at(trainer.schedule, 2 * nb - 1)[0], rel=1e-6)
    assert trainer.schedule.lr0 * trainer.schedule.lrf < float(rows[-1]["lr/pg0"]) < trainer.schedule.lr0
    assert result.metrics and result.run.metrics_json.is_file()


def test_an_epoch_longer_than_the_budget_stops_inside_it(demo_data, tmp_path, tiny_arch, monkeypatch):
    """The clock jumps past the budget at once: one optimizer step, then validation, metrics.json, done."""
    from instseg.engine import time_budget
    from instseg.engine.trainer import Trainer

    ticks = iter([0.0])
    monkeypatch.setattr(time_budget.time, "monotonic", lambda: next(ticks, 1e6))
    trainer = Trainer(_timed_cfg(demo_data, tmp_path, "cut", 0.01, recipe="step"))  # step: an optimizer step a batch
    calls = []
    forward = trainer.model.forward_train
    monkeypatch.setattr(trainer.model, "forward_train", lambda *a: calls.append(1) or forward(*a))
    assert trainer.nb > 1
    result = trainer.fit()
    assert len(calls) == 1 and result.epochs_done == 1 and trainer.cfg.epochs == 1
    assert len(_rows(result.run.results_csv)) == 1 and result.run.metrics_json.is_file()
