"""``instseg compare --ray-address``: two tiny entries trained as Ray tasks on a local Ray cluster that the
test starts (and stops: ``ray.shutdown`` ends the processes this test started, nobody else's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instseg.compare.ray_runner import _task_device, _unreachable, connect, default_gpus
from instseg.compare.runs import CompareError


@pytest.mark.parametrize("device, gpus, inside", [("0", 1.0, "0"), ("3", 1.0, "0"), ("2,5", 2.0, "0,1"),
                                                  ("cpu", 0.0, "cpu"), ("", 0.0, "")])
def test_gpus_per_task_from_device(device, gpus, inside):
    assert default_gpus(device) == gpus and _task_device(device) == inside


def test_an_address_where_nothing_listens_fails_fast():
    pytest.importorskip("ray", reason="pip install 'ray[tune]'")
    assert _unreachable("auto") is None and _unreachable("ray://127.0.0.1:1")
    with pytest.raises(CompareError, match=r"--ray-address 127.0.0.1:1: no Ray cluster answers there"):
        connect("127.0.0.1:1")


@pytest.mark.slow
@pytest.mark.stress  # starting a local Ray costs most of its 2-3 minutes
def test_two_entries_as_ray_tasks_on_a_local_cluster(tmp_path):
    ray = pytest.importorskip("ray", reason="pip install 'ray[tune]'")
    from instseg.data.demo import make_demo_dataset

    data = make_demo_dataset(tmp_path / "data", n_train=4, n_val=3, imgsz=96, seed=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        address = ray.get_runtime_context().gcs_address
        out = tmp_path / "cmp"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).parents[2] / "src"),
                                                                       os.environ.get("PYTHONPATH", "")] if p)}
        cmd = [sys.executable, "-m", "instseg", "compare", "--data", str(data), "-a", "rtmdet-ins:tiny",
               "-a", "solov2:nano", "--epochs", "1", "--imgsz", "64", "--batch", "2", "--device", "cpu",
               "--workers", "0", "--cpus-per-run", "1", "--bootstrap", "100", "--latency-iters", "2",
               "--latency-warmup", "1", "--no-report", "--out", str(out), "--ray-address", address]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    finally:
        ray.shutdown()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("submitted to Ray") == 2
    doc = json.loads((out / "compare.json").read_text())
    assert doc["protocol"]["ray_address"] == address and doc["failed"] == []
    runs = {r["name"]: r for r in doc["runs"]}
    assert set(runs) == {"rtmdet-ins-tiny", "solov2-nano"}
    for r in runs.values():  # trained by a Ray worker, not by the compare process
        assert r["trained_on"].startswith("ray:") and (out / r["run_dir"] / "metrics.json").is_file()
    assert runs["rtmdet-ins-tiny"]["trained_on"] != runs["solov2-nano"]["trained_on"]  # side by side, 1 CPU each
    assert all(r["metrics"]["segm"]["mAP"] is not None for r in runs.values())
