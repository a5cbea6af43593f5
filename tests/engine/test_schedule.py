"""The schedules: Ultralytics' recipe against a recording of its real trainer, the others by their formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from instseg.config import ConfigError, ScheduleConfig
from instseg.engine.schedule import (accumulate_at, auto_optimizer, decay_factor, lr_at, momentum_at,
                                     resolve_schedule)

FIXTURE = Path(__file__).parent / "fixtures" / "ultralytics_schedule.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def _resolve_case(case: dict):
    args = dict(case["args"])
    epochs, batch = args.pop("epochs"), args.pop("batch")
    cfg = ScheduleConfig(recipe="ultralytics", **args)
    return resolve_schedule(cfg, architecture="yolo11-seg", default_recipe="ultralytics", epochs=epochs,
                            nb=case["nb"], batch=batch, n_train=case["n_train"], nc=case["nc"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ultralytics_recipe_matches_recorded_trainer(case):
    s = _resolve_case(case)
    assert s.optimizer == case["optimizer"]
    assert case["group_names"] == ["weight", "bn", "bias"]
    assert s.weight_decay == pytest.approx(case["weight_decay"][0], abs=1e-12)
    assert s.lr0 == pytest.approx(case["initial_lr"][0], abs=1e-12)
    assert len(case["iterations"]) == s.total_iters
    for ni, row in enumerate(case["iterations"]):
        lrs = lr_at(s, ni)
        for got, want in zip(lrs, row["lr"]):
            assert abs(got - want) < 1e-9, (case["name"], ni, lrs, row["lr"])
        assert abs(momentum_at(s, ni) - row["momentum"][0]) < 1e-9, (case["name"], ni)
        assert accumulate_at(s, ni) == row["accumulate"], (case["name"], ni)


@pytest.mark.parametrize("n_train,batch,epochs,nc,want", [
    (100, 16, 100, 3, ("AdamW", 0.001429, 0.9)),       # 2*100 = 200 iterations
    (100_000, 16, 10, 80, ("SGD", 0.01, 0.9)),         # 1563*10 > 10k
    (64 * 100, 64, 100, 1, ("AdamW", 0.002, 0.9)),     # exactly 10k is still AdamW
])
def test_auto_optimizer(n_train, batch, epochs, nc, want):
    assert auto_optimizer(n_train, batch, 64, epochs, nc) == want


@pytest.mark.parametrize("recipe,arch,nb,ni,want", [
    # step: warmup factor 1e-3 -> 1 over min(1000, total // 3) = 100 of the 300 iterations; x0.1 every 10
    # epochs (nb=10)
    ("step", "maskrcnn", 10, 0, 0.005 * 1e-3),
    ("step", "maskrcnn", 10, 50, 0.005 * (1e-3 + (1 - 1e-3) * 0.5)),
    ("step", "maskrcnn", 10, 99, 0.005 * (1e-3 + (1 - 1e-3) * 0.99)),
    ("step", "maskrcnn", 10, 80 + 19, 0.005 * (1e-3 + (1 - 1e-3) * 0.99)),
    ("step", "maskrcnn", 10, 100, 0.0005),
    ("step", "maskrcnn", 10, 250, 0.00005),
    # upstream solov2 (epochs 36, nb 20): warmup 500 iters from 1 %, x0.1 at epochs 27 and 33
    ("upstream", "solov2", 20, 0, 0.01 * 0.01),
    ("upstream", "solov2", 20, 250, 0.01 * (0.01 + 0.99 * 0.5)),
    ("upstream", "solov2", 20, 539, 0.01),
    ("upstream", "solov2", 20, 540, 0.001),
    ("upstream", "solov2", 20, 660, 0.0001),
    # upstream solov2 with nb 10: the 500 warmup iterations are capped at all but the last epoch (350)
    ("upstream", "solov2", 10, 175, 0.01 * (0.01 + 0.99 * 0.5)),
    # upstream rtmdet-ins (epochs 36, nb 100): 1000 warmup iters from 1e-5, flat to epoch 18, cosine to 5 %
    ("upstream", "rtmdet-ins", 100, 500, 0.004 * (1e-5 + (1 - 1e-5) * 0.5)),
    ("upstream", "rtmdet-ins", 100, 1799, 0.004),
    ("upstream", "rtmdet-ins", 100, 1800 + 900, 0.004 * (0.05 + 0.95 * 0.5)),
    ("upstream", "rtmdet-ins", 100, 3600, 0.004 * 0.05),
])
def test_recipe_lr_values(recipe, arch, nb, ni, want):
    epochs = 36 if arch != "maskrcnn" else 30
    s = resolve_schedule(ScheduleConfig(recipe=recipe), architecture=arch, default_recipe="step", epochs=epochs,
                         nb=nb, batch=4, n_train=40, nc=2)
    assert lr_at(s, ni)[0] == pytest.approx(want, rel=1e-9)


def test_warmup_cosine_endpoints():
    s = resolve_schedule(ScheduleConfig(recipe="warmup-cosine"), architecture="solov2", default_recipe="x",
                         epochs=20, nb=5, batch=8, n_train=40, nc=1)
    lr0 = 0.002 * 5 / 5
    assert s.warmup_iters == 35 and s.optimizer == "SGD" and s.momentum == 0.937
    assert lr_at(s, 0)[2] == pytest.approx(0.02 * lr0)
    assert lr_at(s, 35)[0] == pytest.approx(lr0)
    assert lr_at(s, 100)[0] == pytest.approx(0.017 * lr0)
    mid = 35 + (100 - 35) / 2
    assert decay_factor(s, int(mid)) == pytest.approx(0.017 + 0.983 * (1 + math.cos(math.pi * 32 / 65)) / 2)


@pytest.mark.parametrize("override,field,value", [
    (dict(lr0=0.123), "lr0", 0.123),
    (dict(optimizer="Adam"), "optimizer", "Adam"),
    (dict(momentum=0.5), "momentum", 0.5),
    (dict(weight_decay=0.01), "weight_decay", 0.01),
    (dict(clip_grad=1.0), "clip_grad", 1.0),
])
def test_explicit_values_win(override, field, value):
    s = resolve_schedule(ScheduleConfig(recipe="step", **override), architecture="maskrcnn",
                         default_recipe="step", epochs=5, nb=4, batch=4, n_train=16, nc=1)
    assert getattr(s, field) == value


def test_default_recipe_and_cos_lr():
    s = resolve_schedule(ScheduleConfig(cos_lr=True), architecture="rtmdet-ins", default_recipe="ultralytics",
                         epochs=10, nb=4, batch=64, n_train=256, nc=1)
    assert s.recipe == "ultralytics" and s.decay == "cosine" and s.accumulate == 1
    assert lr_at(s, 39)[0] == pytest.approx(s.lr0 * ((1 - math.cos(9 * math.pi / 10)) / 2 * (0.01 - 1) + 1))


def test_bad_shape_is_a_config_error():
    with pytest.raises(ConfigError, match="nb"):
        resolve_schedule(ScheduleConfig(), architecture="maskrcnn", default_recipe="step", epochs=1, nb=0,
                         batch=1, n_train=0, nc=1)
