"""DDP on the CPU: torchrun, 2 processes, gloo, one tiny epoch of the engine."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from instseg.engine.distributed import DistInfo, dist_env

HERE = Path(__file__).parent


@pytest.mark.parametrize("env,want", [({}, DistInfo(0, 0, 1)),
                                      ({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}, DistInfo(1, 1, 2))])
def test_dist_env(monkeypatch, env, want):
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    info = dist_env()
    assert info == want and info.is_main == (want.rank == 0) and info.enabled == (want.world_size > 1)


@pytest.mark.parametrize("device,match", [("0,1", "torchrun --nproc_per_node 2"), ("x", "valid: cpu")])
def test_select_device_errors(device, match):
    from instseg.config import ConfigError
    from instseg.engine.distributed import select_device

    with pytest.raises(ConfigError, match=match):
        select_device(device, DistInfo())


def test_select_device_cpu():
    from instseg.engine.distributed import select_device

    assert select_device("cpu", DistInfo()).type == "cpu"


@pytest.mark.slow
def test_torchrun_two_cpu_processes(demo_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(HERE / "ddp_entry.py"), str(demo_data), str(tmp_path / "runs"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert r0["run"] == r1["run"] == str(tmp_path / "runs" / "ddp")  # one run folder, chosen by rank 0
    assert r0["nb"] == r1["nb"] == 3  # 12 demo images split over 2 ranks, batches of 2
    for k in r0["params"]:  # gradients were averaged: both ranks hold the same weights
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    rows = list(csv.DictReader(open(tmp_path / "runs" / "ddp" / "results.csv")))
    assert [r["epoch"] for r in rows] == ["1"] and rows[0]["metrics/segm_mAP"] != ""
