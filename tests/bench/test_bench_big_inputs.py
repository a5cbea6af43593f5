"""bench_big_inputs.py: every case runs, and its peak RSS is the measuring process's own (the input is
written by another process, so the writer's memory is neither in the baseline nor hidden by it)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench" / "bench_big_inputs.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_big_inputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _src_on_path(monkeypatch):
    """The script's child processes import this checkout's instseg."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))


def test_coco_cost_is_the_load_not_the_writer():
    bench = _bench()
    label = bench.measure("label", 1)  # imports only: what any case's baseline should be
    coco = bench.measure("coco", 8)
    assert "COCO JSON of" in coco["what"] and "loaded in" in coco["what"]
    # the writer of the JSON holds all of it as Python objects (several times its size); none of that is in
    # the loading process's baseline, and the load itself costs more than the file's size
    assert coco["baseline_mb"] < label["baseline_mb"] + 40, coco
    assert coco["cost_mb"] >= 8 and coco["peak_mb"] == coco["baseline_mb"] + coco["cost_mb"], coco


@pytest.mark.slow  # 10,000 masks rasterized: ~15 s and ~1 GB
def test_instances_case_runs():
    r = _bench().measure("instances", 1)
    assert "10000 parsed, 10000 COCO annotations, masks (10000, 160, 160)" in r["what"], r


def test_script_prints_one_line_per_case():
    out = subprocess.run([sys.executable, str(SCRIPT), "--case", "label"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    [line] = out.stdout.splitlines()
    assert line.startswith("label") and "peak RSS" in line and "label-too-large" in line


def test_a_big_parent_does_not_inflate_the_case():
    """The measuring process's figures are its own even when the process that starts it is large (Linux
    carries the parent's RSS into a child's ru_maxrss at exec; VmHWM starts afresh)."""
    ballast = bytearray(400 * 2**20)  # zero pages are not resident: touch one byte per page
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    r = _bench().measure("label", 1)
    assert r["baseline_mb"] < 200 and r["peak_mb"] < 200, r
    del ballast
