"""The per-epoch hook ``instseg.api.train(cfg, callbacks=[fn])`` that tune reports through: the engine calls
it after each epoch's validation; Ultralytics-trained architectures through Ultralytics' on_fit_epoch_end."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from instseg.models.registry import ARCHITECTURES


def test_ultralytics_epoch_metrics_under_instseg_names():
    from instseg.backends.ultralytics import _epoch_metrics

    trainer = SimpleNamespace(metrics={"metrics/mAP50-95(M)": 0.25, "metrics/mAP50(M)": 0.5,
                                       "metrics/mAP50-95(B)": 0.3, "val/seg_loss": 1.0})
    assert _epoch_metrics(trainer) == {"segm_mAP": 0.25, "segm_mAP50": 0.5, "bbox_mAP": 0.3}
    assert _epoch_metrics(SimpleNamespace(metrics=None)) == {}


CASES = [pytest.param(a, s, id=f"{a}-{s}", marks=pytest.mark.slow)
         for a, s in (("rtmdet-ins", "tiny"), ("yolo11-seg", "n")) if a in ARCHITECTURES]


@pytest.mark.parametrize("architecture,size", CASES)
def test_callbacks_called_after_every_epoch(architecture, size, tmp_path, monkeypatch):
    from instseg import api
    from instseg.backends import backend_for_architecture
    from instseg.config import TrainConfig
    from instseg.data.demo import make_demo_dataset

    why = backend_for_architecture(architecture).available()
    if why:
        pytest.skip(why)
    monkeypatch.chdir(tmp_path)
    data = make_demo_dataset(tmp_path / "d", n_train=4, n_val=2, imgsz=64, seed=1)
    seen: list[tuple[int, dict]] = []
    cfg = TrainConfig(data=data, architecture=architecture, model=size, epochs=2, imgsz=64, batch=2, device="cpu",
                      workers=0, quiet=True, project=tmp_path / "runs", loggers=[])
    result = api.train(cfg, callbacks=[lambda epoch, metrics: seen.append((epoch, dict(metrics)))])
    assert [e for e, _ in seen] == [1, 2]
    for _, m in seen:
        assert 0.0 <= m["segm_mAP"] <= 1.0 and 0.0 <= m["bbox_mAP"] <= 1.0
    assert result.epochs_done == 2 and (result.run.root / "metrics.json").is_file()


def test_ultralytics_callback_skips_the_final_validation_call():
    from instseg.backends.ultralytics import _per_epoch

    seen = []
    cb = _per_epoch(lambda e, m: seen.append((e, m["segm_mAP"])))
    for epoch, value in ((0, 0.1), (1, 0.2), (2, 0.3), (1, 0.4)):  # 2 epochs, then the best.pt re-validation
        cb(SimpleNamespace(epoch=epoch, epochs=2, metrics={"metrics/mAP50-95(M)": value}))
    assert seen == [(1, 0.1), (2, 0.2)]
