"""Whole runs through the command line with torchvision Mask R-CNN (tiny images, a few iterations):
train -> resume/extend -> eval --weights -> predict, on the demo data and on a few fire-seg images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from instseg.cli import app

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _subset(train_dir: Path, val_dir: Path, names: list[str], tmp_path: Path, n_train: int = 4,
            n_val: int = 2) -> Path:
    """A data.yaml over the first few images of a dataset (lists of image paths; nothing is copied)."""
    train = sorted(train_dir.iterdir())[:n_train]
    val = sorted(val_dir.iterdir())[:n_val]
    (tmp_path / "train.txt").write_text("\n".join(str(p) for p in train) + "\n")
    (tmp_path / "val.txt").write_text("\n".join(str(p) for p in val) + "\n")
    (tmp_path / "val_images").mkdir()
    for p in val:
        (tmp_path / "val_images" / p.name).symlink_to(p)
    yaml = tmp_path / "subset.yaml"
    yaml.write_text(f"path: {tmp_path}\ntrain: train.txt\nval: val.txt\nnames: {names!r}\n")
    return yaml


def _whole_run(data: Path, tmp_path: Path, val_images: Path) -> None:
    common = ["--device", "cpu", "--imgsz", "64", "--batch", "2", "--quiet", "--workers", "0", "--max-det", "10"]
    _invoke("train", "--data", str(data), "-a", "maskrcnn", "-m", "r50-fpn", "--epochs", "1",
            "--project", str(tmp_path / "runs"), "--lr", "0.002", "--clip-grad", "10", *common)
    run = tmp_path / "runs" / "exp"
    _invoke("train", "--resume", str(run / "weights" / "last.pt"), "--epochs", "2")
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(float(r["train/loss_mask"]) > 0 for r in rows)
    out = _invoke("eval", "--weights", str(run / "weights" / "best.pt"), "--data", str(data), "--split", "val",
                  "--device", "cpu", "--max-det", "10", "--out", str(tmp_path / "m.json")).output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert "segm_mAP" in metrics and metrics["num_images"] >= 2 and "AP" in out
    trained = json.loads((run / "metrics.json").read_text())  # the trainer's final eval of the same best.pt
    for key in ("segm_mAP", "segm_mAP50", "bbox_mAP"):
        assert metrics[key] == pytest.approx(trained[key], abs=1e-9), key
    _invoke("predict", "--weights", str(run / "weights" / "best.pt"), "--source", str(val_images), "--out",
            str(tmp_path / "pred"), "--conf", "0.0", "--device", "cpu", "--max-det", "5")
    images = json.loads((tmp_path / "pred" / "images.json").read_text())["images"]
    results = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    sizes = {im["id"]: [im["height"], im["width"]] for im in images}
    assert results and all(r["segmentation"]["size"] == sizes[r["image_id"]] for r in results)
    assert len(list((tmp_path / "pred" / "overlays").glob("*.jpg"))) == len(images)


@pytest.mark.slow
@pytest.mark.stress  # the same flow as test_whole_run_fire_seg and the maskrcnn contract test
def test_whole_run_demo(demo_data, tmp_path):
    import yaml

    root = demo_data.parent
    names = list(yaml.safe_load(demo_data.read_text())["names"])
    data = _subset(root / "images" / "train", root / "images" / "val", names, tmp_path)
    _whole_run(data, tmp_path, tmp_path / "val_images")


@pytest.mark.slow
def test_whole_run_fire_seg(fire_seg, tmp_path):
    data = _subset(fire_seg / "train" / "images", fire_seg / "valid" / "images", ["fire"], tmp_path)
    _whole_run(data, tmp_path, tmp_path / "val_images")


def test_train_errors_are_clear(tmp_path):
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2 and "--data" in result.output
    from instseg.errors import WeightsError

    with pytest.raises(WeightsError, match="checkpoint not found"):
        runner.invoke(app, ["train", "--resume", str(tmp_path / "nope.pt")], catch_exceptions=False)
