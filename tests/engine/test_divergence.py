"""Defaults never diverge: the smallest size of every registered architecture, trained from random init with
its defaults on 8 fire-seg images (imgsz 128, batch 2, 2 epochs, CPU), ends with finite losses.

The same runs as ``python scripts/bench/bench_divergence.py --smallest`` (which prints the table)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "bench_divergence.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_divergence", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases():
    """(architecture, its smallest size), read from the registry only (no backend imported at collection)."""
    from instseg.models.registry import ARCHITECTURES

    return [pytest.param(a.name, min(a.sizes.values(), key=lambda s: s.params_m or math.inf).name,
                         id=a.name) for a in ARCHITECTURES.values() if a.status == "available"]


def test_targets_lists_every_available_architecture():
    """The script's start-up (backend look-up per architecture) runs without training anything."""
    from instseg.models.registry import ARCHITECTURES

    rows = _bench().targets(smallest=True)
    assert [a for a, _, _ in rows] == [a.name for a in ARCHITECTURES.values() if a.status == "available"]
    assert all(why is None or isinstance(why, str) for _, _, why in rows)


@pytest.mark.slow
@pytest.mark.stress
@pytest.mark.parametrize("arch,size", _cases())
def test_defaults_end_with_finite_losses(fire_seg, tmp_path, arch, size):
    bench = _bench()
    [(_, _, why)] = bench.targets([arch], smallest=True)
    if why:
        pytest.skip(why)
    row = bench.run_one(bench.fire8_yaml(tmp_path / "data", fire_seg), arch, size, tmp_path / "runs")
    assert row["exit"] == 0, row["error"]
    assert row["epochs"] == 2 and row["losses"], row
    assert all(math.isfinite(v) for v in row["losses"].values()), bench.table([row])
