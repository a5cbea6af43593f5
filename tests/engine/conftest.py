"""Engine fixtures: a registered tiny architecture built from tests/engine/tiny_model.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def tiny_arch(monkeypatch):
    """Registers architecture 'tiny-test' (size 't', stride-4 masks, 64 px) for the duration of a test."""
    from instseg.models import registry

    monkeypatch.syspath_prepend(str(HERE))
    spec = registry.ArchitectureSpec(
        name="tiny-test", backend="native", default_size="t", default_schedule="step", mask_stride=4,
        builder="tiny_model:build_tiny",
        sizes={"t": registry.SizeSpec("t", "test model", default_batch=2, default_imgsz=64)})
    monkeypatch.setitem(registry.ARCHITECTURES, "tiny-test", spec)
    sys.modules.pop("tiny_model", None)
    return spec
