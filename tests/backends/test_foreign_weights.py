"""Checkpoints users bring from other tools: MMDetection ``.pth`` of RTMDet-Ins / SOLOv2, torchvision Mask
R-CNN state dicts. Each backend's ``owns()`` recognises its files without unpickling them; predict and eval
take them with the flags that say what the file cannot (size inferred from the tensor shapes, class names
from the file, --data, --names or COCO's)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from instseg.backends import backend_for_weights
from instseg.backends.engine_trained import COCO80
from instseg.cli import app
from instseg.contract import PredictConfig
from instseg.errors import WeightsError
from instseg.models.build import build_model

runner = CliRunner()


def _mmdet_file(path, architecture, size, nc, legacy=False, classes=None):
    model = build_model(architecture, size, nc)
    meta = {"mmdet_version": "3.3.0"}
    if classes:
        meta["dataset_meta"] = {"classes": tuple(classes)}
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_mmdet_rtmdet_is_recognised_and_described_without_flags(tmp_path, legacy):
    path = _mmdet_file(tmp_path / "rtmdet-ins_tiny_coco.pth", "rtmdet-ins", "tiny", 80, legacy=legacy)
    backend = backend_for_weights(path)
    assert backend.name == "native"
    info = backend.describe(path, PredictConfig())
    assert (info.architecture, info.model, info.kind) == ("rtmdet-ins", "tiny", "mmdet")
    assert info.names == COCO80 and info.imgsz == 640


def test_mmdet_solov2_size_and_names_come_from_the_file(tmp_path):
    path = _mmdet_file(tmp_path / "solo.pth", "solov2", "light-r18", 3, classes=["a", "b", "c"])
    info = backend_for_weights(path).describe(path, PredictConfig())
    assert (info.architecture, info.model, info.names) == ("solov2", "light-r18", ["a", "b", "c"])


def test_mmdet_file_without_names_asks_for_them(tmp_path):
    path = _mmdet_file(tmp_path / "solo.pth", "solov2", "nano", 2)
    with pytest.raises(WeightsError, match="--names"):
        backend_for_weights(path).describe(path, PredictConfig())


def test_wrong_architecture_flag_is_named(tmp_path):
    path = _mmdet_file(tmp_path / "solo.pth", "solov2", "nano", 2)
    with pytest.raises(WeightsError, match="--architecture solov2"):
        backend_for_weights(path).describe(path, PredictConfig(architecture="rtmdet-ins", names=["a", "b"]))


def test_unknown_file_names_the_flags(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsError, match="--architecture/-a"):
        backend_for_weights(path)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a checkpoint"):
        backend_for_weights(tmp_path / "text.pt")


def test_torchvision_state_dict_predicts_through_the_cli(tmp_path, demo_data):
    import yaml

    from instseg.models.maskrcnn import build_maskrcnn

    names = list(yaml.safe_load(demo_data.read_text())["names"])
    model = build_maskrcnn("r50-fpn", len(names), imgsz=64)
    path = tmp_path / "maskrcnn_tv.pth"
    torch.save(model.model.state_dict(), path)  # what torchvision users save: the bare MaskRCNN
    backend = backend_for_weights(path)
    assert backend.name == "torchvision"
    images = demo_data.parent / "images" / "val"
    out = tmp_path / "pred"
    result = runner.invoke(app, ["predict", "--weights", str(path), "--source", str(images), "--out", str(out),
                                 "--data", str(demo_data), "--imgsz", "64", "--conf", "0", "--device", "cpu",
                                 "--no-overlays"])
    assert result.exit_code == 0, result.output
    listed = json.loads((out / "images.json").read_text())
    assert [c["name"] for c in listed["categories"]] == names
    assert len(listed["images"]) == len(list(images.iterdir()))
    wrong = runner.invoke(app, ["predict", "--weights", str(path), "--source", str(images), "--names", "a,b",
                                "--device", "cpu"])
    assert wrong.exit_code == 1 and f"predicts {len(names)} classes" in str(wrong.exception)


@pytest.mark.slow
def test_mmdet_checkpoint_predicts_and_evaluates_through_the_cli(tmp_path, demo_data):
    import yaml

    names = list(yaml.safe_load(demo_data.read_text())["names"])
    path = _mmdet_file(tmp_path / "rtmdet-ins_tiny_custom.pth", "rtmdet-ins", "tiny", len(names))
    images = demo_data.parent / "images" / "val"
    result = runner.invoke(app, ["predict", "--weights", str(path), "--source", str(images), "--out",
                                 str(tmp_path / "pred"), "--names", ",".join(names), "--imgsz", "64", "--conf", "0",
                                 "--device", "cpu", "--no-overlays"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "pred" / "predictions.json").read_text())  # random init still predicts
    result = runner.invoke(app, ["eval", "--weights", str(path), "--data", str(demo_data), "--device", "cpu",
                                 "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m.json").read_text())["num_images"] == len(list(images.iterdir()))
