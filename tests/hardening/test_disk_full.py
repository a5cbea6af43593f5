"""A full disk during training: ENOSPC at a checkpoint or at results.csv keeps the previous files intact,
stops with one DiskFullError line naming the folder and the space needed, and ``--resume`` finishes the run
once space is back (the resumed run equals an uninterrupted one)."""

from __future__ import annotations

import csv
import errno
import os
import subprocess
from pathlib import Path

import pytest

from instseg.config import ScheduleConfig, TrainConfig
from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.setup import resume_config
from instseg.engine.trainer import train
from instseg.io import DiskFullError, atomic_write, atomic_write_text


def _cfg(data, project, epochs=3):
    return TrainConfig(data=data, architecture="tiny-test", epochs=epochs, imgsz=64, batch=4, device="cpu",
                       workers=0, project=project, name="exp", quiet=True, deterministic=True, val_period=1,
                       schedule=ScheduleConfig(recipe="step", lr0=0.05))


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        # wall times (time, time/val) differ between any two runs
        return [{k: v for k, v in r.items() if k.split("/")[0] != "time"} for r in csv.DictReader(f)]


class FullDisk:
    """Makes the ``fail_on``-th write through instseg.io hit ENOSPC after half its bytes (where ``match``
    is in the target's name), as a full disk does."""

    def __init__(self, monkeypatch, match: str, fail_on: int):
        import instseg.io as io

        self.calls, self.match, self.fail_on = 0, match, fail_on
        original = io.atomic_write

        def flaky(path, write, *, binary=False, fsync=False):
            if self.match in Path(path).name:
                self.calls += 1
                if self.calls == self.fail_on:
                    def half_then_full(f):
                        f.write(b"x" * 4096 if binary else "x" * 4096)
                        raise OSError(errno.ENOSPC, "No space left on device")

                    return original(path, half_then_full, binary=binary, fsync=fsync)
            return original(path, write, binary=binary, fsync=fsync)

        monkeypatch.setattr(io, "atomic_write", flaky)
        monkeypatch.setattr("instseg.engine.checkpoint.atomic_write", flaky)


def test_atomic_write_turns_enospc_into_one_line_and_keeps_the_file(tmp_path):
    target = atomic_write_text(tmp_path / "a.txt", "old content\n")

    def full(f):
        f.write("new" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError) as e:
        atomic_write(target, full)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path}: disk full while writing a.txt (the previous version is kept)")
    assert "MB free" in msg and "\n" not in msg
    assert target.read_text() == "old content\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    with pytest.raises(PermissionError):  # other OS errors are not disguised as a full disk
        def denied(f):
            raise PermissionError(errno.EACCES, "denied")
        atomic_write(target, denied)


@pytest.fixture
def rising_fitness(monkeypatch):
    """Every validated epoch improves (so best.pt is written each epoch): fitness = the epoch's number.
    The tiny model's mAP stays 0 in 3 epochs; ``state['epoch']`` is set again before a resume."""
    state = {"epoch": 0}

    def fitness(metrics, best_metric):
        state["epoch"] += 1
        return float(state["epoch"])

    monkeypatch.setattr("instseg.engine.trainer.fitness_of", fitness)
    return state


@pytest.mark.parametrize("where, fail_on", [("last.pt", 2), ("best.pt", 2), ("results.csv", 2), ("last.pt", 3)])
def test_enospc_during_training_then_resume(tiny_data, tmp_path, tiny_arch, monkeypatch, rising_fitness,
                                            where, fail_on):
    ref = train(_cfg(tiny_data, tmp_path / "ref"))
    rising_fitness["epoch"] = 0
    disk = FullDisk(monkeypatch, where, fail_on)
    with pytest.raises(DiskFullError) as e:
        train(_cfg(tiny_data, tmp_path / "cut"))
    run = tmp_path / "cut" / "exp"
    folder = run / ("weights" if where.endswith(".pt") else "")
    assert str(e.value).startswith(f"{str(folder).rstrip('/')}: disk full while writing {where}")
    last = run / "weights" / "last.pt"
    ck = load_checkpoint(last)  # the previous checkpoint is intact and loads
    assert ck["epoch"] == fail_on - 2
    best = load_checkpoint(run / "weights" / "best.pt")
    assert best["epoch"] == fail_on - (1 if where == "last.pt" else 2)  # never behind last.pt
    assert not list(run.rglob(".*.tmp"))  # no temporary file left behind
    disk.match = "<space is back>"
    rising_fitness["epoch"] = ck["epoch"] + 1
    cfg, rd = resume_config(last)
    train(cfg, rd)
    assert _rows(run / "results.csv") == _rows(ref.run.results_csv)
    assert [r["epoch"] for r in _rows(run / "results.csv")] == ["1", "2", "3"]


def test_cli_prints_one_line(tiny_data, tmp_path, tiny_arch, monkeypatch, capsys):
    from instseg import cli

    FullDisk(monkeypatch, "last.pt", 1)
    monkeypatch.setattr("sys.argv", ["instseg", "train", "--data", str(tiny_data), "-a", "tiny-test", "--epochs", "1",
                                     "--project", str(tmp_path), "--device", "cpu", "--quiet", "--workers", "0"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "disk full while writing last.pt" in err[0] and "--resume" in err[0]


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_a_real_full_tmpfs(tmp_path):
    """Where the test may mount a 64 KiB tmpfs: a real ENOSPC from the kernel, not an injected one."""
    mnt = tmp_path / "small"
    if not _tmpfs(mnt, "64k"):
        pytest.skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN); the injected-ENOSPC tests cover this")
    try:
        keep = atomic_write(mnt / "ck.pt", lambda f: f.write(b"1" * 16_000), binary=True)
        with pytest.raises(DiskFullError, match="disk full while writing ck.pt"):
            atomic_write(keep, lambda f: f.write(b"2" * 200_000), binary=True, fsync=True)
        assert keep.read_bytes() == b"1" * 16_000 and os.listdir(mnt) == ["ck.pt"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
