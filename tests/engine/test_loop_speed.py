"""The pieces behind the whole-loop speed work: worker/thread split, in-place compile, results.csv's
validation time, the EMA's multi-tensor update, the trainer building the val GT once."""

from __future__ import annotations

import csv

import pytest
import torch

from instseg.config import ScheduleConfig, TrainConfig
from instseg.engine import threads
from instseg.engine.ema import ModelEMA, ema_decay
from instseg.engine.logger import FIXED_COLUMNS, ResultsCSV
from instseg.engine.trainer import compile_in_place, train


@pytest.mark.parametrize("cores,torch_threads,device,requested,expect", [
    (2, 2, "cpu", 4, 0),     # torch uses both cores: loading stays in the training process
    (16, 8, "cpu", 4, 4),    # cores left over: up to the requested workers
    (16, 14, "cpu", 4, 2),
    (16, 16, "cuda", 8, 8),  # GPU: the cores go to the workers
    (4, 4, "cuda", 8, 4),    # never more workers than cores
    (2, 2, "cuda", 0, 0),    # workers=0 is respected
])
def test_loader_workers_split(monkeypatch, cores, torch_threads, device, requested, expect):
    monkeypatch.setattr(threads, "available_cpus", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads)
    assert threads.loader_workers(requested, device) == expect


def test_loader_workers_per_rank(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 16)
    assert threads.loader_workers(8, "cuda", world_size=4) == 4


def test_available_cpus_is_the_affinity_mask():
    import os

    assert threads.available_cpus() == len(os.sched_getaffinity(0))


def test_compile_in_place_keeps_state_dict_keys():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
            self.neck = torch.nn.Conv2d(4, 4, 1)
            self.head = torch.nn.Conv2d(4, 1, 1)

    class Wrapper(torch.nn.Module):  # torchvision style: the backbone one level down
        def __init__(self):
            super().__init__()
            self.model = M()

    w = Wrapper()
    keys = list(w.state_dict())
    assert compile_in_place(w) == ["model.backbone", "model.neck"]
    assert list(w.state_dict()) == keys and not any("_orig_mod" in k for k in w.state_dict())
    assert w.model.backbone._compiled_call_impl is not None and w.model.head._compiled_call_impl is None


def test_ema_multi_tensor_update_is_the_per_tensor_formula():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    ema = ModelEMA(model)
    ref = {k: v.clone() for k, v in ema.ema.state_dict().items()}
    for step in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].num_batches_tracked += 1
        ema.update(model)
        d = ema_decay(step)
        for k, v in model.state_dict().items():
            ref[k] = ref[k] * d + v * (1 - d) if v.dtype.is_floating_point else v.clone()
    for k, v in ema.ema.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=0, atol=1e-6)
    assert int(ema.ema[1].num_batches_tracked) == 3


def test_results_csv_keeps_old_rows_when_columns_change(tmp_path):
    path = tmp_path / "results.csv"
    old = ["epoch", "time", "train/loss"]
    path.write_text(",".join(old) + "\n1,2.5,0.9\n")
    r = ResultsCSV(path, ["loss_bce"])
    r.append({"epoch": 2, "time": 3.0, "time/val": 1.25, "train/loss": 0.8, "train/loss_bce": 0.8})
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0])[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert rows[0]["epoch"] == "1" and rows[0]["time"] == "2.5" and rows[0]["time/val"] == ""
    assert rows[1]["time/val"] == "1.25" and rows[1]["train/loss_bce"] == "0.8"


def test_trainer_records_val_time_and_builds_the_gt_once(demo_data, tmp_path, tiny_arch, monkeypatch):
    import instseg.engine.validate as V

    calls = []
    real = V.ground_truth
    monkeypatch.setattr(V, "ground_truth", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = TrainConfig(data=demo_data, architecture="tiny-test", epochs=3, imgsz=64, batch=4, device="cpu",
                      workers=0, project=tmp_path, name="exp", quiet=True, val_period=1,
                      schedule=ScheduleConfig(recipe="step", lr0=0.05))
    run = train(cfg).run
    rows = list(csv.DictReader(run.results_csv.open()))
    assert all(float(r["time/val"]) > 0 for r in rows)
    assert len(calls) == 1  # three validations and the final metrics.json share one ground truth


def _tiny_cfg(demo_data, tmp_path, **kw):
    return TrainConfig(data=demo_data, architecture="tiny-test", epochs=1, imgsz=64, batch=4, device="cpu",
                       workers=0, project=tmp_path, name="exp", quiet=True,
                       schedule=ScheduleConfig(recipe="step", lr0=0.05), **kw)


@pytest.mark.parametrize("channels_last,cpu_amp,expect_cl", [(None, False, True), (False, False, False),
                                                             (None, True, True)])
def test_cpu_memory_format_and_bf16(demo_data, tmp_path, tiny_arch, channels_last, cpu_amp, expect_cl):
    from instseg.engine.trainer import Trainer
    from instseg.engine.validate import memory_format_of

    t = Trainer(_tiny_cfg(demo_data, tmp_path, channels_last=channels_last, cpu_amp=cpu_amp))
    conv = next(p for p in t.model.parameters() if p.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) == expect_cl
    assert (memory_format_of(t.eval_model()) == torch.channels_last) == expect_cl  # the EMA copy follows
    assert t.autocast.get("dtype") == (torch.bfloat16 if cpu_amp else None)
    result = t.fit()
    rows = list(csv.DictReader(result.run.results_csv.open()))
    assert rows and all(float(r["train/loss"]) == float(r["train/loss"]) for r in rows)  # finite, not NaN


def test_engine_speed_options_are_refused_for_ultralytics():
    from instseg.backends.ultralytics_args import check_expressible
    from instseg.config import ConfigError

    for kw in ({"compile": True}, {"channels_last": True}, {"cpu_amp": True}):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            check_expressible(TrainConfig(architecture="yolo11-seg", **kw))
    check_expressible(TrainConfig(architecture="yolo11-seg"))  # the defaults pass
