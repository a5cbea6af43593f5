"""The logger interface: names parsed, MLflow against a local file store and W&B offline read back."""

from __future__ import annotations

import json
import math

import pytest

from instseg.engine.loggers import finish_run, numeric, open_loggers, parse_logger_names, scoped_setting


@pytest.mark.parametrize("values, names", [
    ([], []), (["tensorboard"], ["tensorboard"]), (["mlflow,wandb", "mlflow"], ["mlflow", "wandb"]),
    (["TensorBoard, mlflow"], ["tensorboard", "mlflow"]), (["none"], []),
])
def test_parse_logger_names(values, names):
    assert parse_logger_names(values) == names


def test_unknown_logger_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: tensorboard, mlflow, wandb"):
        parse_logger_names(["comet"])


def test_numeric_and_scoped_setting():
    assert numeric({"a": "0.5", "b": "", "c": math.nan, "d": True, "e": 3}) == {"a": 0.5, "e": 3.0}

    class Saving(dict):
        def __setitem__(self, k, v):
            raise AssertionError("saved to disk")

    s = Saving(tensorboard=False)
    with scoped_setting(s, "tensorboard", True):
        assert s["tensorboard"] is True
    assert s == {"tensorboard": False}


def _fake_run(tmp_path):
    run = tmp_path / "proj" / "exp"
    run.mkdir(parents=True)
    (run / "results.csv").write_text("epoch,train/loss,metrics/segm_mAP\n1,2.5,0.1\n2,1.5,0.2\n")
    (run / "metrics.json").write_text(json.dumps({"segm_mAP": 0.25, "segm_per_class": {"a": 0.3}, "engine": "x"}))
    (run / "config.yaml").write_text("architecture: solov2\nepochs: 2\n")
    report = run / "report"
    report.mkdir()
    (report / "index.html").write_text("<html></html>")
    return run, report


def _train_like(run, names):
    ls = open_loggers(names, run, {"architecture": "solov2", "schedule": {"lr0": 0.01}})
    for step, loss, m in ((1, 2.5, 0.1), (2, 1.5, 0.2)):
        ls.log_metrics({"train/loss": loss, "metrics/segm_mAP": m, "note": "text"}, step)
    ls.end_training(2)
    finish_run(run, names, report_dir=run / "report")


@pytest.mark.slow  # MLflow creates its sqlite schema: ~10 s
def test_mlflow_default_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="pip install mlflow  (or pip install 'instseg[loggers]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store: ./mlflow.db, artifacts in ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run, _ = _fake_run(tmp_path)
    _train_like(run, ["mlflow"])
    run_id = json.loads((run / "loggers.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=uri)
    r = client.get_run(run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params["architecture"] == "solov2" and r.data.params["schedule.lr0"] == "0.01"
    assert [m.value for m in client.get_metric_history(run_id, "train/loss")] == [2.5, 1.5]
    assert r.data.metrics["final/segm_mAP"] == 0.25 and r.data.metrics["final/segm_per_class.a"] == 0.3
    assert [a.path for a in client.list_artifacts(run_id, "report")] == ["report/index.html"]


def test_mlflow_replays_a_run_the_engine_did_not_train(tmp_path, monkeypatch):
    """Ultralytics runs: finish_run logs results.csv and metrics.json after the fact."""
    pytest.importorskip("mlflow", reason="pip install mlflow  (or pip install 'instseg[loggers]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a plain local file store, by URI
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run, report = _fake_run(tmp_path)
    finish_run(run, ["tensorboard", "mlflow"], report_dir=report)
    run_id = json.loads((run / "loggers.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=uri)
    hist = client.get_metric_history(run_id, "metrics/segm_mAP")
    assert [(m.step, m.value) for m in hist] == [(1, 0.1), (2, 0.2)]
    assert client.get_run(run_id).data.params["epochs"] == "2"


@pytest.mark.slow
def test_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="pip install wandb  (or pip install 'instseg[loggers]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, _ = _fake_run(tmp_path)
    _train_like(run, ["wandb"])
    run_id = json.loads((run / "loggers.json").read_text())["wandb"]
    offline = list((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 1
    history, summary, config, artifacts = _read_wandb(next(offline[0].glob("run-*.wandb")))
    assert [h["train/loss"] for h in history if "train/loss" in h] == [2.5, 1.5]
    assert summary["final/segm_mAP"] == 0.25
    assert config["architecture"] == "solov2" and config["schedule.lr0"] == 0.01
    assert artifacts == [f"report-{run_id}"]


def _read_wandb(path):
    """The records of a W&B offline run file (LevelDB log format: 7-byte file header, 32 KiB blocks of
    ``crc32, length, type`` chunks), decoded with W&B's own protobuf messages."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    pos, block, data, records = 7, 32768, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        data += raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            rec = pb.Record()
            rec.ParseFromString(data)
            records.append(rec)
            data = b""
    history, summary, config, artifacts = [], {}, {}, []
    for rec in records:
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            summary.update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "artifact":
            artifacts.append(rec.artifact.name)
    return history, summary, config, artifacts
