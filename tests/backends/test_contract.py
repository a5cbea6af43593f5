"""The backend contract, over every registered architecture (its smallest size), as timm's test_models.py
runs every registered model: train one tiny epoch on generated data, resume it one epoch more, predict,
evaluate, check the run folder; each backend object's ``owns``/``describe``/``resolved_args`` on the files it
wrote. Skipped, with the install command as reason, where a backend is missing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from instseg.backends import BACKENDS, backend_for_weights, get_backend
from instseg.contract import Backend, PredictConfig
from instseg.models.registry import ARCHITECTURES

# Detectron2's zoo config from random init (frozen BN statistics) overflows its box predictions at the
# shared default optimizer (AdamW) on 4 images; plain SGD keeps the contract run finite
EXTRA = {"detectron2-maskrcnn": ["schedule.optimizer=SGD", "schedule.lr0=0.002"]}
RUN_FILES = ("config.yaml", "weights/last.pt", "weights/best.pt", "results.csv", "metrics.json",
             "predictions/val.json")


def _smallest(arch) -> str:
    return min(arch.sizes.values(), key=lambda s: (s.params_m or 0.0)).name


CASES = [pytest.param(name, _smallest(spec), id=f"{name}-{_smallest(spec)}", marks=pytest.mark.slow)
         for name, spec in ARCHITECTURES.items() if spec.status == "available"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from instseg.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("contract"), n_train=4, n_val=2, imgsz=96, seed=1)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_object_implements_the_protocol(name):
    backend = get_backend(name)
    assert isinstance(backend, Backend) and backend.name == name
    why = backend.available()
    assert why is None or "pip install" in why


def _rows(run: Path) -> list[dict]:
    return list(csv.DictReader(open(run / "results.csv")))


def _interrupt_yolo_after_first_epoch(monkeypatch):
    """Stops Ultralytics right after epoch 1's last.pt is written, as a kill would (the run is unfinished)."""
    from instseg.backends import ultralytics as ub

    ub.configure_offline(quiet=True)
    from instseg.backends.ultralytics_trainer import InstsegSegmentationTrainer

    original = InstsegSegmentationTrainer.save_model

    def save_then_stop(self):
        original(self)
        if self.epoch == 0:
            raise KeyboardInterrupt("simulated kill after epoch 1")

    monkeypatch.setattr(InstsegSegmentationTrainer, "save_model", save_then_stop)
    return original


@pytest.mark.parametrize("architecture,size", CASES)
def test_contract(architecture, size, tiny_data, tmp_path, monkeypatch):
    from instseg import api
    from instseg.config import TrainConfig, apply_overrides
    from instseg.engine.setup import load_records

    spec = ARCHITECTURES[architecture]
    backend = get_backend(spec.backend)
    why = backend.available()
    if why:
        pytest.skip(why)
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(data=tiny_data, architecture=architecture, model=size, epochs=2, imgsz=64, batch=2,
                      device="cpu", workers=0, quiet=True, project=tmp_path / "runs", max_det=20)
    yolo = backend.name == "ultralytics"  # resumes through its own trainer, which cannot extend a run
    if yolo:
        _interrupt_yolo_after_first_epoch(monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            api.train(cfg)
        monkeypatch.undo()
    else:
        cfg = apply_overrides(cfg, ["epochs=1", "schedule.clip_grad=10", *EXTRA.get(architecture, [])])
        api.train(cfg)
    run = tmp_path / "runs" / "exp"
    assert len(_rows(run)) == 1
    last = run / "weights" / "last.pt"
    assert backend.owns(last) and backend_for_weights(last).name == backend.name

    # resume: one more epoch in the same folder (engine: --epochs extends; Ultralytics: finishes its 2)
    result = api.train(TrainConfig(resume=last), resume_epochs=None if yolo else 2)
    assert result.run.root.resolve() == run.resolve()
    rows = _rows(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for rel in RUN_FILES:
        assert (run / rel).is_file(), rel
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= (metrics.get("segm_mAP") or 0.0) <= 1.0

    best = run / "weights" / "best.pt"
    info = backend.describe(best, PredictConfig())
    assert info.architecture == architecture and info.model == size
    from instseg.data.yaml_config import load_data_yaml

    assert info.names == list(load_data_yaml(tiny_data).names)
    pcfg = PredictConfig(conf=0.0, max_det=5, device="cpu", imgsz=64)
    records = load_records(tiny_data, "val")
    preds = backend.predict(best, [r.path for r in records], pcfg)
    assert len(preds) == len(records)
    for pred, rec in zip(preds, records):
        assert (pred.height, pred.width) == (rec.height, rec.width)
        assert all(m["size"] == [rec.height, rec.width] for m in pred.masks)
    scored = backend.evaluate(best, records, PredictConfig(conf=0.001, device="cpu", imgsz=64))
    assert scored["num_images"] == len(records) and "segm_mAP" in scored
