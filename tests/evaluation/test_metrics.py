"""summarize / per-class AP on hand-made arrays; Metrics.to_dict, save, from_dict and table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from instseg.evaluation.metrics import EvalArrays, Metrics, TypeMetrics, per_class_ap, summarize
from instseg.evaluation.tables import fmt

IOUS = np.linspace(0.5, 0.95, 10)
AREAS = ("all", "small", "medium", "large")


def _arrays(k=2, fill=0.5) -> EvalArrays:
    precision = np.full((10, 101, k, 4, 3), fill)
    recall = np.full((10, k, 4, 3), fill)
    return EvalArrays(precision, recall, IOUS, AREAS, (1, 10, 100), tuple(range(1, k + 1)))


def test_summarize_reads_the_right_slices():
    a = _arrays()
    a.precision[0, :, :, 0, 2] = 0.9  # IoU .50, area all, 100 dets
    a.precision[5, :, :, 0, 2] = 0.7  # IoU .75
    a.precision[:, :, :, 1, 2] = -1  # no small ground truth at all
    a.recall[:, :, 1, 2] = -1
    a.recall[:, :, 0, 0] = 0.2  # 1 detection
    a.recall[:, 1, 3, 2] = -1  # class 2 has no large ground truth
    a.recall[:, 0, 3, 2] = 0.8
    s = summarize(a)
    assert s["AP50"] == pytest.approx(0.9) and s["AP75"] == pytest.approx(0.7)
    assert s["AP"] == pytest.approx((0.9 + 0.7 + 8 * 0.5) / 10)
    assert math.isnan(s["APs"]) and math.isnan(s["ARs"])
    assert s["AR1"] == pytest.approx(0.2) and s["AR100"] == pytest.approx(0.5)
    assert s["ARl"] == pytest.approx(0.8)  # the -1 entries are left out of the mean


@pytest.mark.parametrize("iou, expected", [(None, [0.3, math.nan]), (0.5, [0.8, math.nan])])
def test_per_class_ap(iou, expected):
    a = _arrays(fill=0.3)
    a.precision[0, :, 0, 0, 2] = 0.8
    a.precision[0, :, 0, 0, 2][50:] = 0.8  # same value: AP50 of class 1 is 0.8
    a.precision[:, :, 1] = -1  # class 2: no ground truth
    got = per_class_ap(a, iou)
    if iou is None:
        expected = [(0.8 + 9 * 0.3) / 10, math.nan]
    np.testing.assert_allclose(got, expected)


def _metrics() -> Metrics:
    tm = TypeMetrics.from_arrays(_arrays(), {1: "cat", 2: "dog"})
    tm.per_class["dog"] = math.nan
    tm.APs = math.nan
    return Metrics(
        segm=tm,
        bbox=TypeMetrics.from_arrays(_arrays(fill=0.25), {1: "cat", 2: "dog"}),
        num_images=3,
        num_predictions=9,
    )


def test_to_dict_flat_keys():
    d = _metrics().to_dict()
    for p in ("segm", "bbox"):
        for k in (
            "mAP",
            "mAP50",
            "mAP75",
            "mAPs",
            "mAPm",
            "mAPl",
            "AR1",
            "AR10",
            "AR100",
            "ARs",
            "ARm",
            "ARl",
        ):
            assert f"{p}_{k}" in d
    assert d["segm_mAP"] == pytest.approx(0.5) and d["bbox_mAP50"] == pytest.approx(0.25)
    assert d["segm_per_class"]["cat"] == pytest.approx(0.5) and math.isnan(d["segm_per_class"]["dog"])
    assert math.isnan(d["segm_mAPs"]) and d["num_predictions"] == 9


def test_save_and_from_dict_roundtrip(tmp_path):
    m = _metrics()
    path = m.save(tmp_path / "metrics.json")
    raw = json.loads(path.read_text())  # strict JSON: NaN written as null
    assert raw["segm_mAPs"] is None and raw["segm_per_class"]["dog"] is None
    back = Metrics.from_dict(raw)
    assert back.segm.AP == m.segm.AP and math.isnan(back.segm.APs) and back.bbox.AR10 == m.bbox.AR10
    assert math.isnan(back.segm.per_class["dog"]) and back.num_images == 3


def test_table_side_by_side_and_dash_for_nan():
    text = _metrics().table()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "segm", "bbox"]
    ap_row = next(line for line in lines if line.startswith("AP @[.50:.95]"))
    assert ap_row.split()[-2:] == ["0.500", "0.250"]
    small = next(line for line in lines if line.startswith("AP small"))
    assert small.split()[-2:] == ["-", "0.250"]
    dog = next(line for line in lines if line.startswith("dog"))
    assert dog.split()[1] == "-"


@pytest.mark.parametrize("value, text", [(0.12345, "0.123"), (math.nan, "-"), (1.0, "1.000"), (0.0, "0.000")])
def test_fmt(value, text):
    assert fmt(value) == text
