"""Resuming after the dataset changed says what changed (counts, hashes before and after) and continues
only with ``force`` (``--force``)."""

from __future__ import annotations

import shutil

import pytest

from instseg.config import ScheduleConfig, TrainConfig
from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.dataset_fingerprint import describe_change, fingerprint
from instseg.engine.setup import resume_config
from instseg.engine.trainer import train
from instseg.errors import DatasetError


@pytest.fixture
def data(tmp_path):
    from instseg.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path / "d", n_train=8, n_val=2, imgsz=64, seed=3)


def test_fingerprint_sees_label_and_image_changes(data):
    before = fingerprint(data)
    assert before["train"]["images"] == 8 and before["train"]["labels"] == 8 and before["val"]["images"] == 2
    assert fingerprint(data) == before  # stable
    labels = sorted((data.parent / "labels" / "train").glob("*.txt"))
    labels[0].write_text(labels[0].read_text() + "0 0.1 0.1 0.3 0.1 0.3 0.3\n")
    after = fingerprint(data)
    assert after["train"]["labels_sha"] != before["train"]["labels_sha"]
    assert after["train"]["images_sha"] == before["train"]["images_sha"] and after["val"] == before["val"]
    img = sorted((data.parent / "images" / "train").iterdir())[0]
    shutil.copy(img, img.with_name("extra" + img.suffix))
    change = describe_change(before, fingerprint(data))
    assert change.startswith("train: images 8 -> 9, ") and "labels hash" in change and "val" not in change


def test_resume_on_changed_data_needs_force(data, tmp_path, tiny_arch):
    cfg = TrainConfig(data=data, architecture="tiny-test", epochs=2, imgsz=64, batch=4, device="cpu", workers=0,
                      project=tmp_path / "runs", name="exp", quiet=True, val_period=1,
                      schedule=ScheduleConfig(recipe="step", lr0=0.05))
    from dataclasses import replace

    train(replace(cfg, epochs=1))
    last = tmp_path / "runs" / "exp" / "weights" / "last.pt"
    assert load_checkpoint(last)["data_fingerprint"] == fingerprint(data)
    resume_config(last, epochs=2)  # unchanged data: fine
    for p in sorted((data.parent / "labels" / "train").glob("*.txt"))[:2]:
        p.unlink()  # two images lose their labels
    with pytest.raises(DatasetError) as e:
        resume_config(last, epochs=2)
    msg = str(e.value)
    assert "the dataset changed since this run's last checkpoint (train: labels 8 -> 6, labels hash" in msg
    assert "--force" in msg and "\n" not in msg
    cfg2, run = resume_config(last, epochs=2, force=True)
    result = train(cfg2, run)
    assert result.epochs_done == 2
    assert load_checkpoint(last)["data_fingerprint"]["train"]["labels"] == 6  # the accepted data from now on
    resume_config(last, epochs=3)  # no complaint any more
