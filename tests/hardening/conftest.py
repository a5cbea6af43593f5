"""Hardening tests: with INSTSEG_FUZZ_REPORT=1, print the number of fuzzed inputs per parser at the end."""

from __future__ import annotations

import os


def pytest_terminal_summary(terminalreporter):
    if not os.environ.get("INSTSEG_FUZZ_REPORT"):
        return
    from .fuzz_checks import COUNTS

    total = sum(COUNTS.values())
    terminalreporter.write_line(f"fuzzed inputs: {total} in all: " + ", ".join(f"{k} {v}" for k, v in COUNTS.items()))


from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A demo dataset of 8 train / 4 val images at 64 px (data.yaml path)."""
    from instseg.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("tiny"), n_train=8, n_val=4, imgsz=64, seed=0)
