"""Hardening tests: with INSTSEG_FUZZ_REPORT=1, print the number of fuzzed inputs per parser at the end."""

from __future__ import annotations

import os


def pytest_terminal_summary(terminalreporter):
    if not os.environ.get("INSTSEG_FUZZ_REPORT"):
        return
    from .fuzz_checks import COUNTS

    total = sum(COUNTS.values())
    terminalreporter.write_line(f"fuzzed inputs: {total} in all: " + ", ".join(f"{k} {v}" for k, v in COUNTS.items()))


import sys
from pathlib import Path

import pytest

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"


@pytest.fixture
def tiny_arch(monkeypatch):
    """Architecture 'tiny-test' (tests/engine/tiny_model.py: a two-conv model of the model contract)."""
    from instseg.models import registry

    monkeypatch.syspath_prepend(str(ENGINE_TESTS))
    spec = registry.ArchitectureSpec(
        name="tiny-test", backend="native", default_size="t", default_schedule="step", mask_stride=4,
        builder="tiny_model:build_tiny",
        sizes={"t": registry.SizeSpec("t", "test model", default_batch=2, default_imgsz=64)})
    monkeypatch.setitem(registry.ARCHITECTURES, "tiny-test", spec)
    sys.modules.pop("tiny_model", None)
    return spec


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A demo dataset of 8 train / 4 val images at 64 px (data.yaml path)."""
    from instseg.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("tiny"), n_train=8, n_val=4, imgsz=64, seed=0)
