"""The 2-process gloo DDP run, 20 times in a row (INSTSEG_DDP_RUNS to change): teardown must never abort,
whatever the load. Each run gets its own free port, so a port still in TIME_WAIT from the previous run
cannot make the next one fail."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "engine"
RUNS = int(os.environ.get("INSTSEG_DDP_RUNS", 20))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.stress
def test_ddp_gloo_twenty_times(tiny_data, tmp_path):
    import torch

    failures = []
    for k in range(RUNS):
        out, runs = tmp_path / f"out{k}", tmp_path / f"runs{k}"
        out.mkdir()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(_free_port()), str(ENGINE / "ddp_entry.py"), str(tiny_data),
               str(runs), str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            failures.append(f"run {k}: rc {proc.returncode}: {proc.stderr[-1500:]}")
            continue
        r0 = torch.load(out / "rank0.pt", weights_only=True)
        r1 = torch.load(out / "rank1.pt", weights_only=True)
        assert all(torch.equal(r0["params"][p], r1["params"][p]) for p in r0["params"])
        rows = list(csv.DictReader(open(runs / "ddp" / "results.csv")))
        assert [r["epoch"] for r in rows] == ["1"]
    assert not failures, f"{len(failures)}/{RUNS} DDP runs failed:\n" + "\n".join(failures)
