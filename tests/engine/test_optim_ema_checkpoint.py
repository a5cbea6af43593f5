"""Parameter groups, the optimizer under a schedule, the EMA and atomic, safe checkpoints."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from instseg.config import ScheduleConfig
from instseg.engine.checkpoint import (load_checkpoint, model_state, rng_state, save_checkpoint,
                                       set_rng_state)
from instseg.engine.ema import ModelEMA, ema_decay
from instseg.engine.optim import apply_schedule, build_optimizer, split_parameters
from instseg.engine.schedule import lr_at, resolve_schedule
from instseg.errors import WeightsError


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=False), nn.GroupNorm(1, 2))


def test_groups_split_as_ultralytics():
    m = _net()
    m[2].weight.requires_grad_(False)  # frozen parameters are left out
    g = split_parameters(m)
    assert [p.shape for p in g["weight"]] == [torch.Size([4, 3, 3, 3])]
    assert [p.shape for p in g["bn"]] == [torch.Size([4]), torch.Size([2])]
    assert [p.shape for p in g["bias"]] == [torch.Size([4]), torch.Size([4]), torch.Size([2])]


@pytest.mark.parametrize("recipe,opt_cls,decay", [("step", torch.optim.SGD, 5e-4),
                                                  ("upstream", torch.optim.AdamW, 0.05)])
def test_optimizer_groups_and_schedule_applied(recipe, opt_cls, decay):
    s = resolve_schedule(ScheduleConfig(recipe=recipe), architecture="rtmdet-ins" if recipe == "upstream" else "maskrcnn",
                         default_recipe="step", epochs=4, nb=5, batch=2, n_train=10, nc=1)
    opt = build_optimizer(_net(), s)
    assert isinstance(opt, opt_cls)
    assert [g["param_group"] for g in opt.param_groups] == ["weight", "bn", "bias"]
    assert [g["weight_decay"] for g in opt.param_groups] == [decay, 0.0, 0.0]
    acc = apply_schedule(opt, s, 3)
    assert acc == 1
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(list(lr_at(s, 3)))


def test_ultralytics_sgd_momentum_warmup_on_optimizer():
    s = resolve_schedule(ScheduleConfig(recipe="ultralytics", optimizer="SGD", warmup_epochs=1.0),
                         architecture="x", default_recipe="ultralytics", epochs=3, nb=4, batch=16, n_train=64, nc=1)
    opt = build_optimizer(_net(), s)
    assert opt.param_groups[0]["nesterov"] is True
    assert apply_schedule(opt, s, 0) == 1
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.8)
    assert opt.param_groups[2]["lr"] == pytest.approx(0.1)
    assert apply_schedule(opt, s, 4) == 4  # accumulate = round(64/16)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.937)


@pytest.mark.parametrize("updates,want", [(1, 0.9999 * (1 - math.exp(-1 / 2000))), (2000, 0.9999 * (1 - math.exp(-1))),
                                          (100000, 0.9999 * (1 - math.exp(-50)))])
def test_ema_decay_ramp(updates, want):
    assert ema_decay(updates) == pytest.approx(want, rel=1e-12)


def test_ema_update_is_the_weighted_average():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(m, decay=0.9, tau=1.0)
    before = ema.ema[0].weight.clone()
    with torch.no_grad():
        m[0].weight.add_(1.0)
    m[1].num_batches_tracked.fill_(7)
    ema.update(m)
    d = 0.9 * (1 - math.exp(-1))
    assert torch.allclose(ema.ema[0].weight, d * before + (1 - d) * m[0].weight)
    assert int(ema.ema[1].num_batches_tracked) == 7  # integer buffers are copied
    assert not any(p.requires_grad for p in ema.ema.parameters())


def test_ema_averages_a_shared_tensor_once():
    shared = nn.Conv2d(1, 1, 1, bias=False)

    class TwoHeads(nn.Module):  # the same conv reachable under two names, as RTMDet-Ins' shared head convs
        def __init__(self):
            super().__init__()
            self.a = nn.ModuleList([shared])
            self.b = nn.ModuleList([shared])

    m = TwoHeads()
    ema = ModelEMA(m, decay=0.9, tau=1.0)
    before = ema.ema.a[0].weight.clone()
    assert ema.ema.a[0].weight.data_ptr() == ema.ema.b[0].weight.data_ptr()  # deepcopy keeps the sharing
    with torch.no_grad():
        shared.weight.add_(1.0)
    ema.update(m)
    d = 0.9 * (1 - math.exp(-1))
    assert torch.allclose(ema.ema.a[0].weight, d * before + (1 - d) * shared.weight)


def _ckpt(model):
    return {"model": model.state_dict(), "ema": None, "architecture": "maskrcnn", "size": "r50-fpn", "names": ["a"],
            "epoch": 3, "config": {"epochs": 5}, "rng": rng_state()}


def test_checkpoint_roundtrip_weights_only(tmp_path):
    m = _net()
    path = save_checkpoint(tmp_path / "w" / "last.pt", _ckpt(m))
    assert not list(path.parent.glob("*.tmp"))
    ck = load_checkpoint(path)
    assert ck["epoch"] == 3 and ck["names"] == ["a"]
    assert torch.equal(model_state(ck)["0.weight"], m.state_dict()["0.weight"])


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    m = _net()
    path = save_checkpoint(tmp_path / "last.pt", _ckpt(m))
    good = path.read_bytes()

    def boom(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, _ckpt(m))
    assert path.read_bytes() == good and not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("content,match", [(None, "not found"), (b"not a zip", "cannot be read"),
                                           ({"model": {}}, "not an instseg checkpoint")])
def test_bad_checkpoints_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(WeightsError, match=match) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "architecture": "x", "size": "y", "names": [], "obj": object()}, path)
    with pytest.raises(WeightsError, match="weights_only"):
        load_checkpoint(path)


def test_rng_state_roundtrip(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = save_checkpoint(tmp_path / "r.pt", {"model": {}, "architecture": "a", "size": "s", "names": [],
                                               "rng": rng_state()})
    want = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == want
