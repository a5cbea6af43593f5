"""A run that fails to start leaves no run folder behind: a missing data.yaml is refused before any folder
is made, and a start that fails after making one (the val split is missing) removes what it made. A folder
that existed before (--exist-ok) or that holds anything else (a checkpoint) is never deleted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from instseg import api
from instseg.config import TrainConfig
from instseg.errors import InstsegError
from instseg.rundir import RunDir, missing_folders, remove_failed_start


def _cfg(data, project, **kw):
    return TrainConfig(data=data, architecture="tiny-test", epochs=1, imgsz=64, batch=2, device="cpu", workers=0,
                       project=project, quiet=True, **kw)


@pytest.fixture
def noval(demo_data, tmp_path) -> Path:
    """A data.yaml that reads (names, train) but has no val split: training fails after its start."""
    names = yaml.safe_load(demo_data.read_text())["names"]
    path = tmp_path / "noval.yaml"
    path.write_text(f"path: {demo_data.parent}\ntrain: images/train\nnames: {names!r}\n")
    return path


def test_missing_data_yaml_makes_no_folder(tmp_path, tiny_arch):
    with pytest.raises(InstsegError, match="nope.yaml"):
        api.train(_cfg(tmp_path / "nope.yaml", tmp_path / "work_dirs" / "tiny"))
    assert list(tmp_path.iterdir()) == []


def test_start_that_fails_removes_the_folders_it_made(noval, tmp_path, tiny_arch):
    project = tmp_path / "work_dirs" / "tiny"
    with pytest.raises(InstsegError, match="val"):
        api.train(_cfg(noval, project))
    assert not (tmp_path / "work_dirs").exists()


def test_existing_project_and_its_runs_stay(noval, tmp_path, tiny_arch):
    project = tmp_path / "proj"
    (project / "exp" / "weights").mkdir(parents=True)
    (project / "exp" / "weights" / "last.pt").write_bytes(b"an earlier run")
    with pytest.raises(InstsegError):
        api.train(_cfg(noval, project))  # would have been exp2
    assert sorted(p.name for p in project.iterdir()) == ["exp"]
    assert (project / "exp" / "weights" / "last.pt").read_bytes() == b"an earlier run"


def test_reused_folder_stays(noval, tmp_path, tiny_arch):
    project = tmp_path / "proj"
    (project / "exp").mkdir(parents=True)
    (project / "exp" / "config.yaml").write_text("a user's folder\n")
    with pytest.raises(InstsegError):
        api.train(_cfg(noval, project, exist_ok=True))
    assert (project / "exp").is_dir()


def test_remove_failed_start_keeps_anything_but_start_files(tmp_path):
    created = missing_folders(tmp_path / "p" / "exp")
    run = RunDir(tmp_path / "p" / "exp").make()
    (run.root / "events.out.tfevents.1.host.1.0").write_bytes(b"")
    (run.root / "config.yaml").write_text("epochs: 1\n")
    (run.results_csv).write_text("epoch,train/loss\n1,0.5\n")  # an epoch's results: kept
    assert not remove_failed_start(run, created) and run.root.is_dir()
    run.results_csv.write_text("epoch,train/loss\n")  # the header only: what the start wrote
    assert not remove_failed_start(run, created[1:])  # a folder this start did not make: kept
    assert remove_failed_start(run, created) and not (tmp_path / "p").exists()
