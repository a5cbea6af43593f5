"""The report files of a run, a dataset and a comparison (no browser: see test_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from instseg.errors import InstsegError


def test_run_report_counts_match_the_fake_run(demo_run):
    run, expected, report = demo_run
    s = report.summary
    assert (s["tp"], s["fp"], s["missed"]) == (expected["tp"], expected["fp"], expected["missed"])
    for name in ("results.png", "confusion_matrix.png", "MaskPR_curve.png", "BoxPR_curve.png"):
        assert (run / name).stat().st_size > 1000, name
    for stem in ("results", "lr", "segm_pr_iou50", "segm_pr_iou75", "confusion_matrix", "segm_per_class_ap"):
        for ext in ("png", "svg"):
            assert (run / "report" / "plots" / f"{stem}.{ext}").exists(), (stem, ext)


def test_pr_curves_are_the_evaluators_numbers(demo_run):
    """The mean PR curve at IoU 0.5 averages to exactly the mask mAP50 of the evaluator."""
    run, _, report = demo_run
    pr = json.loads((run / "report" / "pr.json").read_text())
    for kind in ("segm", "bbox"):
        for key, metric in (("iou50", "mAP50"), ("iou75", "mAP75")):
            mean = np.mean(pr[kind][key]["mean"])
            assert mean == pytest.approx(report.summary["metrics"][f"{kind}_{metric}"], abs=1e-4)


def test_links_are_relative_and_resolve(demo_run):
    run, _, _ = demo_run
    pages = list((run / "report").rglob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        text = page.read_text()
        for ref in re.findall(r'(?:href|src)="([^"]+)"', text):
            assert not ref.startswith(("/", "file:", "http:", "https:")), (page, ref)
            if ref.startswith("data:"):
                continue
            assert (page.parent / ref).exists(), (page, ref)


def test_thumbnails_written_once(demo_run):
    from instseg.report.run_report import load_val
    from instseg.report.thumbs import write_thumb

    run, _, _ = demo_run
    thumbs = sorted((run / "report" / "thumbs").glob("*.jpg"))
    assert len(thumbs) == 4  # the demo val split: one file per image, shared by every page
    before = {p: p.stat().st_mtime_ns for p in thumbs}
    records, _, _ = load_val(Path(__import__("yaml").safe_load((run / "config.yaml").read_text())["data"]))
    for rec in records:
        t = write_thumb(run / "report", rec.path, rec.width, rec.height)
        assert (t.width, t.height) == (160, 160)
    assert {p: p.stat().st_mtime_ns for p in thumbs} == before


def test_dataset_pages_split(tmp_path, demo_data):
    from instseg.report.dataset_page import write_dataset_pages

    s = write_dataset_pages(tmp_path, demo_data, "train", overview="index.html", per_page=5)
    assert s.images == 12 and s.pages == [f"dataset/page-00{i}.html" for i in (1, 2, 3)]
    page3 = (tmp_path / "dataset" / "page-003.html").read_text()
    assert page3.count('class="card"') == 2
    assert sum(s.per_class) == s.instances == sum(s.sizes.values())


COMPARE = {
    "schema": "instseg.compare/1",
    "protocol": {"split": "val", "imgsz": 160, "epochs": 3, "evaluator": "faster-coco-eval"},
    "class_names": [],
    "runs": [
        {"name": "solov2-nano", "architecture": "solov2", "size": "nano", "params": 4.1e6, "gflops": 31.25,
         "latency_ms": 9.5, "latency": {"median_ms": 9.5, "p90_ms": 13.75},
         "metrics": {"segm": {"mAP": 0.31, "mAP50": 0.52, "mAP75": 0.3}, "bbox": {"mAP": 0.35}},
         "ci": {"segm_mAP": [0.28, 0.34]}},
        {"name": "rtmdet-ins-tiny", "architecture": "rtmdet-ins", "size": "tiny", "params": 5.6e6,
         "latency_ms": 7.1, "metrics": {"segm": {"mAP": 0.36, "mAP50": 0.55, "mAP75": 0.37}},
         "ci": {"segm_mAP": [0.33, 0.39]}},
    ],
}


def write_compare(folder: Path, demo_run, demo_data) -> Path:
    run, _, _ = demo_run
    doc = json.loads(json.dumps(COMPARE))
    doc["protocol"]["data"] = str(demo_data)
    doc["class_names"] = __import__("yaml").safe_load(demo_data.read_text())["names"]
    for r in doc["runs"]:
        r["run_dir"] = str(run)
        r["per_class_ap"] = {"segm": {n: 0.1 * (k + 1) for k, n in enumerate(doc["class_names"])}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compare.json").write_text(json.dumps(doc))
    return folder


def test_compare_page(tmp_path, demo_run, demo_data):
    from instseg.report import build_report

    folder = write_compare(tmp_path / "cmp", demo_run, demo_data)
    index = build_report(folder)
    html = index.read_text()
    assert html.count('class="lb-row"') == 2
    assert html.index("rtmdet-ins-tiny") < html.index("solov2-nano")  # ranked by mask mAP
    assert "[0.330, 0.390]" in html
    assert "GFLOPs" in html and "31.2" in html and "13.8" in html  # GFLOPs and latency p90 (solov2-nano)
    for stem in ("per_class_heatmap", "pr_overlay", "latency_vs_map"):
        assert (folder / "report" / "plots" / f"{stem}.svg").exists()
    assert html.count('class="side"') == 4  # the 4 demo val images, each across both runs
    for ref in re.findall(r'(?:href|src)="([^"]+)"', html):
        assert ref.startswith("data:") or (index.parent / ref).exists(), ref


@pytest.mark.parametrize("doc, message", [
    ({"runs": []}, "non-empty 'runs'"),
    ({"runs": [{"name": "a"}]}, "metrics.segm.mAP"),
    ({"runs": [{"name": "a", "metrics": {"segm": {"mAP": 41}}}]}, "not a fraction"),
    ({"runs": [{"name": "a", "metrics": {"segm": {"mAP": 0.4}}}] * 2}, "duplicate name"),
    ({"schema": "other/9", "runs": [{"name": "a", "metrics": {"segm": {"mAP": 0.4}}}]}, "schema"),
])
def test_compare_schema_errors(tmp_path, doc, message):
    from instseg.report.compare_schema import load_compare

    (tmp_path / "compare.json").write_text(json.dumps(doc))
    with pytest.raises(InstsegError, match=message):
        load_compare(tmp_path)


def test_cli_report_dataset_and_errors(tmp_path, demo_data):
    from typer.testing import CliRunner

    from instseg.cli import app

    r = CliRunner().invoke(app, ["report", "--data", str(demo_data), "--split", "val", "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == f"report: {tmp_path / 'r' / 'index.html'}"
    r = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert r.exit_code != 0 and "neither a run folder" in str(r.exception)


def test_page_titles_name_the_model_and_the_run_once(tmp_path, demo_run, demo_data):
    """`exp` runs are titled "solov2-nano exp"; a compare entry's folder is named after its model, so the
    title says "solov2-nano" once, not twice."""
    from fake_run import make_fake_run

    from instseg.report import write_run_report

    run, _, _ = demo_run
    assert "<title>Evaluation: solov2-nano exp:" in (run / "report" / "eval" / "worst-001.html").read_text()
    named = tmp_path / "solov2-nano"
    make_fake_run(named, demo_data, seed=2, found=0.5, exact=True)
    write_run_report(named)
    text = (named / "report" / "eval" / "worst-001.html").read_text()
    assert "<title>Evaluation: solov2-nano:" in text and "solov2-nano solov2-nano" not in text
