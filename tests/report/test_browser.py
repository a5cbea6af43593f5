"""The pages in a real headless Chromium (Debian's chromium driven by playwright), opened from disk:
no console errors, element counts that match the data, a class filter that hides what it should, and a
screenshot that is not blank. Two screenshots are kept under /tmp/report_shots/."""

from __future__ import annotations

from pathlib import Path

import pytest

SHOTS = Path("/tmp/report_shots")


def _expected_instances(data: Path, split: str):
    from instseg.data.checks import load_split

    records, _ = load_split(data, split)
    return records


def test_dataset_page(open_page, demo_run, demo_data):
    run, _, _ = demo_run
    records = _expected_instances(demo_data, "val")
    nc = len(__import__("yaml").safe_load(demo_data.read_text())["names"])
    p = open_page(run / "report" / "dataset" / "page-001.html")
    assert p.errors == []
    assert p.count(".card") == p.count(".thumb img") == len(records)
    assert p.count(".legend-entry") == nc
    for rec in records:  # one instance row per ground-truth instance of the image
        card = f'.card[data-image="{rec.path.name}"]'
        assert p.count(f"{card} tr.inst-row") == len(rec.instances)
        assert p.count(f"{card} svg path.inst") == len(rec.instances)
    cls = records[0].instances[0].cls
    p.page.evaluate(f"instsegOnly({cls})")
    shown = p.page.evaluate("""() => Array.from(document.querySelectorAll('svg path.inst'))
        .filter(e => e.getClientRects().length > 0).map(e => e.getAttribute('data-cls'))""")
    assert shown and set(shown) == {str(cls)}
    with_cls = sum(1 for r in records if any(i.cls == cls for i in r.instances))
    assert p.count(".card", visible=True) == with_cls == int(p.page.inner_text("#shown"))
    p.page.evaluate("document.getElementById('all-classes').click()")
    assert p.count(".card", visible=True) == len(records)
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert p.screenshot_variance(SHOTS / "demo_dataset.png") > 100


def test_eval_page(open_page, demo_run):
    run, expected, _ = demo_run
    p = open_page(run / "report" / "eval" / "worst-001.html")
    assert p.errors == []
    assert p.count(".card") == 4 and p.count(".thumb img") == 4
    errs = p.page.evaluate("() => Array.from(document.querySelectorAll('.errs')).map(e => +e.textContent)")
    assert sum(errs) == expected["fp"] + expected["missed"]  # at the default threshold 0.25
    assert p.count("svg path.pred[data-st='1']", visible=True) == expected["tp"]
    # raise the threshold above every score: no prediction drawn, every ground truth missed
    p.page.evaluate("s => { const e = document.getElementById('score'); e.value = s; e.dispatchEvent(new Event('input')); }", 1.0)
    assert p.count("svg path.pred", visible=True) == 0
    n_gt = p.count("svg path.gt")
    assert p.count("svg path.gt.missed") == n_gt > 0
    errs = p.page.evaluate("() => Array.from(document.querySelectorAll('.errs')).map(e => +e.textContent)")
    assert sum(errs) == n_gt
    SHOTS.mkdir(parents=True, exist_ok=True)
    p.page.evaluate("s => { const e = document.getElementById('score'); e.value = s; e.dispatchEvent(new Event('input')); }", 0.25)
    p.page.click(".card details summary")
    assert p.screenshot_variance(SHOTS / "demo_eval.png") > 100


def test_index_and_compare_pages(open_page, demo_run, demo_data, tmp_path):
    from test_report import write_compare

    from instseg.report import build_report

    run, _, _ = demo_run
    p = open_page(run / "report" / "index.html")
    assert p.errors == []
    assert p.count(".plots img") >= 8
    assert p.page.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    index = build_report(write_compare(tmp_path / "cmp", demo_run, demo_data))
    c = open_page(index)
    assert c.errors == []
    assert c.count("tr.lb-row") == 2 and c.count(".side") == 4 and c.count(".side .card") == 8
    assert c.screenshot_variance() > 100


@pytest.mark.slow
def test_coco128_pages(open_page, coco128_seg, tmp_path):
    """The real coco128-seg val split: 80 legend entries, 100 + 28 cards, one row per instance."""
    from instseg.report import write_dataset_report

    data = coco128_seg / "data.yaml"
    index = write_dataset_report(data, "val", tmp_path / "r")
    records = _expected_instances(data, "val")
    p = open_page(index)
    assert p.errors == []
    p1 = open_page(index.parent / "dataset" / "page-001.html")
    assert p1.errors == []
    assert p1.count(".legend-entry") == 80
    assert p1.count(".card") == 100 and p1.count("tr.inst-row") == sum(len(r.instances) for r in records[:100])
    p1.page.evaluate("instsegOnly(0)")  # person
    assert p1.count(".card", visible=True) == sum(1 for r in records[:100] if any(i.cls == 0 for i in r.instances))
    p1.page.evaluate("document.getElementById('all-classes').click()")
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert p1.screenshot_variance(SHOTS / "coco128_dataset.png") > 100
    p2 = open_page(index.parent / "dataset" / "page-002.html")
    assert p2.count(".card") == 28 and p2.errors == []
