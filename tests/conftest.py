"""Shared fixtures: the real datasets in ../shared/datasets (skipped with a reason when absent) and the
synthetic demo dataset that instseg generates itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# `make test` (and so CI) runs every property test on the same examples, derived from the test's own code:
# a failure there reproduces on the next run. `make test-stress` and a plain `pytest` draw new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("INSTSEG_DATASETS", REPO.parent / "shared" / "datasets"))


def _dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name!r} not found at {path} (set INSTSEG_DATASETS to its parent folder)")
    return path


@pytest.fixture(scope="session")
def fire_seg() -> Path:
    """Roboflow YOLOv8-seg export: data.yaml with ../train/images paths, 1 class."""
    return _dataset("fire-seg")


@pytest.fixture(scope="session")
def coco128_seg() -> Path:
    """Ultralytics layout, 80 names, 128 images (train == val)."""
    return _dataset("coco128-seg")


@pytest.fixture(scope="session")
def car_damage_coco() -> Path:
    """COCO JSON with polygons, category ids not starting at 0."""
    return _dataset("car-damage-coco")


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The synthetic demo dataset (path to its data.yaml), generated once per session."""
    from instseg.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(root, n_train=12, n_val=4, imgsz=160, seed=0)


@pytest.fixture
def tiny_arch(monkeypatch):
    """Registers architecture 'tiny-test' (tests/engine/tiny_model.py: size 't', stride-4 masks, 64 px) for the
    duration of a test."""
    import sys

    from instseg.models import registry

    monkeypatch.syspath_prepend(str(REPO / "tests" / "engine"))
    spec = registry.ArchitectureSpec(
        name="tiny-test", backend="native", default_size="t", default_schedule="step", mask_stride=4,
        builder="tiny_model:build_tiny",
        sizes={"t": registry.SizeSpec("t", "test model", default_batch=2, default_imgsz=64)})
    monkeypatch.setitem(registry.ARCHITECTURES, "tiny-test", spec)
    sys.modules.pop("tiny_model", None)
    return spec
