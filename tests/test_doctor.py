from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from instseg.cli import app
from instseg.doctor import package_status, render_report


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTSEG_CACHE_DIR", str(tmp_path / "cache"))


def _invoke(*args: str):
    return CliRunner().invoke(app, ["doctor", *args])


def test_environment_only():
    res = _invoke()
    assert res.exit_code == 0
    assert "Environment" in res.output and "torch" in res.output and "CUDA" in res.output
    assert "Dataset" not in res.output


def test_demo_dataset_clean(demo_data):
    res = _invoke("--data", str(demo_data))
    assert res.exit_code == 0, res.output
    assert "Findings: 0 fatal, 0 error, 0 warning, 0 info" in res.output


def _fatal_dataset(tmp_path: Path) -> Path:
    from PIL import Image

    (tmp_path / "d" / "images").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "d" / "images" / "a.jpg")
    (tmp_path / "d" / "data.yaml").write_text("train: images\nval: images\nnames: [a]\n")
    return tmp_path / "d" / "data.yaml"


@pytest.mark.parametrize(
    "make, code, fragment",
    [
        (_fatal_dataset, 1, "FATAL (1)"),
        (lambda p: p / "missing.yaml", 1, "data.yaml not found"),
        (
            lambda p: (p / "bad.yaml").write_text("names: {0: a, 2: b}\ntrain: .\n") and p / "bad.yaml",
            1,
            "missing ids [1]",
        ),
    ],
)
def test_fatal_exits_1(tmp_path, make, code, fragment):
    res = _invoke("--data", str(make(tmp_path)))
    assert res.exit_code == code and fragment in res.output


def test_limit_and_all(tmp_path):
    from PIL import Image

    ds = tmp_path / "d"
    (ds / "images").mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (32, 32)).save(ds / "images" / f"{i}.jpg")
    (ds / "labels").mkdir()
    (ds / "labels" / "0.txt").write_text("0 0.1 0.1 0.5 0.1 0.3 0.6\n")
    (ds / "data.yaml").write_text("train: images\nval: images\nnames: [a]\n")
    short = _invoke("--data", str(ds / "data.yaml"), "--limit", "3").output
    full = _invoke("--data", str(ds / "data.yaml"), "--all").output
    assert "[no-label-file] x7" in short
    assert short.count("no label file -> used as a background image") == 3 and "... and 4 more" in short
    assert full.count("no label file -> used as a background image") == 7 and "more (--all" not in full


def test_paths_shown_relative_to_root(coco128_seg):
    from instseg.data.checks import scan_dataset

    text = render_report(scan_dataset(coco128_seg / "data.yaml"))
    assert "    labels/train2017/000000000656.txt: label file has no image -> ignored" in text
    assert "WARNING (3)" in text and "INFO (4)" in text and "FATAL" not in text.split("Findings:")[1]


@pytest.mark.parametrize(
    "module, dist", [("yaml", "pyyaml"), ("numpy", "numpy"), ("surely_not_a_module_x", "x")]
)
def test_package_status(module, dist):
    import importlib.util

    st = package_status(module, dist, "")
    assert st.installed is (importlib.util.find_spec(module) is not None)
    assert (st.version is not None) is st.installed


def test_environment_does_not_import_optional_backends():
    code = (
        "import sys; from instseg.doctor import environment_report; environment_report(); "
        "optional = ('ultralytics', 'mmdet', 'detectron2', 'ray', 'optuna'); "
        "print(','.join(m for m in optional if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_coco_dataset(car_damage_coco):
    res = _invoke("--coco", str(car_damage_coco / "train" / "COCO_mul_train_annos.json"))
    assert res.exit_code == 0, res.output
    assert "Findings: 0 fatal, 0 error, 0 warning, 1 info" in res.output and "[category-ids] x1" in res.output


@pytest.mark.parametrize("use_option", [False, True])
def test_positional_or_option(demo_data, use_option):
    res = _invoke(*(["--data", str(demo_data)] if use_option else [str(demo_data)]))
    assert res.exit_code == 0 and f"Dataset {demo_data.resolve()}" in res.output
