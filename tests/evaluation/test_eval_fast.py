"""The fast `instseg eval --gt --pred` path: same output as Typer's, fallback to Typer for everything else,
and what the process does not import (pydantic, OpenCV, torch, numpy.ma)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from instseg import cli
from instseg.evaluation import write_results_json
from instseg.evaluation.results import read_json_file

from .conftest import perturbed_results


@pytest.fixture()
def files(car_val_gt, tmp_path):
    gt = tmp_path / "val.json"
    gt.write_text(json.dumps(car_val_gt))
    pred = write_results_json(tmp_path / "results.json", perturbed_results(car_val_gt, "mixed", seed=3))
    return gt, pred


@pytest.mark.parametrize(
    "extra",
    [[], ["--iou-type", "bbox"], ["--iou-type=segm", "--iou-type", "bbox", "--engine", "pycocotools"]],
)
def test_fast_path_prints_what_typer_prints(files, tmp_path, capsys, extra):
    gt, pred = files
    out = tmp_path / "fast.json"
    assert cli._eval_fast(["eval", f"--gt={gt}", "--pred", str(pred), *extra, "--out", str(out)])
    fast = capsys.readouterr().out
    typer_out = tmp_path / "typer.json"
    args = ["eval", "--gt", str(gt), "--pred", str(pred), *extra, "--out", str(typer_out)]
    r = CliRunner().invoke(cli.app, args)
    assert r.exit_code == 0, r.output
    assert fast.replace(str(out), "OUT") == r.output.replace(str(typer_out), "OUT")
    assert json.loads(out.read_text()) == json.loads(typer_out.read_text())


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["train", "--gt", "a.json", "--pred", "b.json"],
        ["eval", "--gt", "a.json"],  # no --pred: Typer's usage error
        ["eval", "--gt", "a.json", "--pred", "b.json", "--help"],
        ["eval", "--gt", "a.json", "--pred", "b.json", "--bogus", "1"],
        ["eval", "--gt", "a.json", "--pred"],  # a value missing
        ["eval", "--gt", "a.json", "--pred", "--out"],
        ["eval", "--gt", "a.json", "--pred", "b.json", "--max-det", "many"],  # not an int
        ["eval", "--weights", "best.pt", "--data", "d.yaml", "--gt", "a.json", "--pred", "b.json"],
    ],
)
def test_fast_path_leaves_the_rest_to_typer(argv, monkeypatch):
    monkeypatch.setattr(cli, "eval_cmd", _must_not_run(cli.eval_cmd))
    assert cli._eval_fast(argv) is False


def _must_not_run(fn):
    def wrapper(**kwargs):
        raise AssertionError(f"eval_cmd ran for {kwargs}")

    wrapper.__wrapped__ = fn  # inspect.signature follows it: the option table is the real command's
    return wrapper


def test_eval_process_imports_little(files):
    """The whole `python -m instseg eval --gt --pred` process: no pydantic (Typer's validators), no OpenCV
    (faster-coco-eval's optional boundary backend), no torch, no numpy.ma; exit 0 and the table."""
    gt, pred = files
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['instseg', 'eval', '--gt', {str(gt)!r}, '--pred', {str(pred)!r}]\n"
        "try:\n    runpy.run_module('instseg', run_name='__main__')\n"
        "finally:\n"
        "    print('LOADED', sorted(m for m in ('pydantic', 'cv2', 'torch', 'numpy.ma', 'rich') "
        "if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "AP @[.50:.95]" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "LOADED []"


def test_faster_import_leaves_opencv_importable():
    code = (
        "import sys\n"
        "from instseg.evaluation.faster_engine import import_faster\n"
        "import_faster()\n"
        "assert 'cv2' not in sys.modules and 'faster_coco_eval' in sys.modules\n"
        "import cv2\n"
        "print(cv2.__version__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


def test_json_reader_falls_back_to_the_standard_parser(tmp_path):
    nan = tmp_path / "nan.json"
    nan.write_text('[{"image_id": 1, "score": NaN}]')  # orjson refuses NaN, the json module reads it
    (res,) = read_json_file(nan, "results")
    assert res["image_id"] == 1 and res["score"] != res["score"]
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"image_id": 1,\n   "score": }\n]')
    from instseg.errors import DatasetError

    with pytest.raises(DatasetError, match=r"bad\.json:3:\d+: invalid JSON in the results file"):
        read_json_file(bad, "results")


@pytest.mark.parametrize("enabled", [True, False])
def test_evaluate_restores_the_garbage_collector(car_val_gt, enabled):
    import gc

    from instseg.evaluation import evaluate

    results = perturbed_results(car_val_gt, "exact", seed=0)
    (gc.enable if enabled else gc.disable)()
    try:
        assert evaluate(car_val_gt, results, iou_types=("bbox",)).bbox.AP == pytest.approx(1.0)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
