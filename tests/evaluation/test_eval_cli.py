"""`instseg eval --gt --pred`: table on stdout, --out JSON, usage and data errors with exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from instseg.cli import app
from instseg.evaluation import evaluate, write_results_json

from .conftest import perturbed_results

runner = CliRunner()


@pytest.fixture()
def files(car_val_gt, tmp_path):
    gt = tmp_path / "val.json"
    gt.write_text(json.dumps(car_val_gt))
    pred = write_results_json(tmp_path / "results.json", perturbed_results(car_val_gt, "mixed", seed=5))
    return gt, pred


def test_eval_prints_table_and_writes_json(files, tmp_path):
    gt, pred = files
    out = tmp_path / "m" / "metrics.json"
    r = runner.invoke(app, ["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out)])
    assert r.exit_code == 0, r.output
    expected = evaluate(gt, pred)
    ap_row = next(line for line in r.output.splitlines() if line.startswith("AP @[.50:.95]"))
    assert ap_row.split()[-2:] == [f"{expected.segm.AP:.3f}", f"{expected.bbox.AP:.3f}"]
    assert "front_bumper" in r.output
    saved = json.loads(out.read_text())
    assert saved["segm_mAP"] == pytest.approx(expected.segm.AP, abs=1e-12)
    assert saved["bbox_per_class"]["door"] == pytest.approx(expected.bbox.per_class["door"], abs=1e-12)


@pytest.mark.parametrize(
    "extra, header",
    [
        (["--iou-type", "bbox"], ["metric", "bbox"]),
        (["--iou-type", "segm", "--engine", "pycocotools"], ["metric", "segm"]),
    ],
)
def test_eval_options(files, extra, header):
    gt, pred = files
    r = runner.invoke(app, ["eval", "--gt", str(gt), "--pred", str(pred), *extra])
    assert r.exit_code == 0, r.output
    assert next(line for line in r.output.splitlines() if line.startswith("metric")).split() == header


@pytest.mark.parametrize("args", [[], ["--gt", "x.json"]])
def test_eval_needs_gt_and_pred(args):
    r = runner.invoke(app, ["eval", *args])
    assert r.exit_code == 2 and "give both --gt" in r.output


def test_eval_data_error_is_one_message(files, tmp_path):
    from instseg.errors import DatasetError

    gt, _ = files
    bad = write_results_json(
        tmp_path / "bad.json", [{"image_id": 12345, "category_id": 1, "score": 0.5, "bbox": [0, 0, 2, 2]}]
    )
    r = runner.invoke(app, ["eval", "--gt", str(gt), "--pred", str(bad), "--iou-type", "bbox"])
    assert r.exit_code != 0 and isinstance(
        r.exception, DatasetError
    )  # main() turns it into "error: ..." exit 1
    assert "image_id 12345 is not in the ground truth" in str(r.exception)
