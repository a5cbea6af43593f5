"""SIGKILL at 10 seeded moments of ``instseg train`` (mid-epoch, while last.pt / best.pt / results.csv /
metrics.json are half written, right after a checkpoint is moved into place, during validation, at random
wall-clock times). After each kill ``instseg train --resume .../last.pt`` finishes the run; last.pt and
best.pt always load; results.csv has one row per finished epoch, equal (all columns but time) to an
uninterrupted ``--deterministic`` run. Kill points: tests/hardening/train_entry.py."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENTRY = Path(__file__).with_name("train_entry.py")
SRC = Path(__file__).resolve().parents[2] / "src"
EPOCHS = 4  # 8 train images, batch 4: 2 iterations per epoch, validation every epoch


def _train(args: list[str], kill: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    env.pop("INSTSEG_KILL_AT", None)
    if kill:
        env["INSTSEG_KILL_AT"] = kill
    return subprocess.run([sys.executable, str(ENTRY), "train", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _args(data: Path, project: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "-a", "tiny-test", "--epochs", str(EPOCHS), "--imgsz", "64", "--batch", "4",
            "--device", "cpu", "--workers", "0", "--project", str(project), "--quiet", "--deterministic",
            "--lr", "0.05", *extra]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("time", "time/val")} for r in csv.DictReader(f)]


def moments(seed: int = 16) -> list[str]:
    """Ten kill points, drawn with ``seed`` from each kind of moment (counts within the run's range)."""
    r = random.Random(seed)
    return [
        f"forward:{r.randint(3, 2 * EPOCHS)}",  # mid-epoch, after the first checkpoint
        f"write:last.pt:{r.randint(2, EPOCHS)}",  # while a checkpoint is half written
        f"write:last.pt:{r.randint(1, 1)}",  # the very first checkpoint: nothing to resume from yet
        "write:best.pt:1",
        f"replaced:last.pt:{r.randint(1, EPOCHS - 1)}",  # just after a checkpoint landed
        f"validate:{r.randint(2, EPOCHS)}",  # during validation
        f"write:results.csv:{r.randint(2, EPOCHS)}",
        "write:metrics.json:1",  # during the final evaluation, all epochs trained
        f"after:{r.uniform(4.0, 7.0):.2f}",  # two arbitrary wall-clock moments
        f"after:{r.uniform(5.0, 9.0):.2f}",
    ]


def _check_weights(run: Path) -> None:
    import torch  # noqa: F401 - load_checkpoint imports it

    from instseg.engine.checkpoint import load_checkpoint

    for name in ("last.pt", "best.pt"):
        path = run / "weights" / name
        if path.exists():
            ck = load_checkpoint(path)  # raises on a torn file
            assert 0 <= ck["epoch"] < EPOCHS


@pytest.mark.slow
@pytest.mark.stress
def test_sigkill_at_ten_moments_then_resume(tiny_data, tmp_path):
    ref = _train(_args(tiny_data, tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    expected = _rows(tmp_path / "ref" / "exp" / "results.csv")
    assert [r["epoch"] for r in expected] == [str(e) for e in range(1, EPOCHS + 1)]
    survived, report = 0, []
    for k, moment in enumerate(moments()):
        project = tmp_path / f"kill{k}"
        run = project / "exp"
        killed = _train(_args(tiny_data, project), kill=moment)
        if killed.returncode == 0:  # an "after" moment later than the whole run: nothing was killed
            report.append(f"{moment}: finished before the kill")
        else:
            assert killed.returncode == -9, (moment, killed.returncode, killed.stderr[-2000:])
        _check_weights(run)
        last = run / "weights" / "last.pt"
        if last.exists():
            rows = _rows(run / "results.csv") if (run / "results.csv").exists() else []
            epochs = [int(r["epoch"]) for r in rows]
            assert epochs == sorted(set(epochs)), (moment, epochs)  # never a duplicate, in order
            done = _train(["--resume", str(last)])
            if done.returncode != 0 and "training already finished" in done.stderr:
                # killed after the final scoring landed (an "after" moment on a fast machine): the run is
                # whole, and resuming it is refused with the reason rather than training again
                assert killed.returncode == -9 and (run / "metrics.json").exists() and len(rows) == EPOCHS, moment
                done = subprocess.CompletedProcess(done.args, 0, done.stdout, done.stderr)
        else:  # killed before the first checkpoint: the run starts again in the same folder
            done = _train(_args(tiny_data, project, "--exist-ok"))
        assert done.returncode == 0, (moment, done.stderr[-3000:])
        _check_weights(run)
        got = _rows(run / "results.csv")
        assert got == expected, (moment, [r["epoch"] for r in got])
        assert (run / "metrics.json").exists() and (run / "predictions" / "val.json").exists()
        assert not list(run.rglob(".*.tmp")), moment
        survived += 1
        report.append(f"{moment}: killed at rc {killed.returncode}, resumed, rows equal")
    print("\n".join(report))
    assert survived == 10
