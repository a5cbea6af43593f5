"""instseg's RTMDet-Ins against MMDetection 3.3.0 (runs only where mmdet and mmcv import; skipped elsewhere).

Run where MMDetection lives, e.g.: PYTHONPATH=src /tmp/mmenv/bin/python -m pytest
tests/models/test_rtmdet_ins_mmdet.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "mmdet", reason="MMDetection is not installed here (a scratch env with mmdet 3.3.0 + mmcv 2.x runs this)"
)
pytest.importorskip("mmcv.ops", reason="mmcv with compiled ops is not installed here")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))


@pytest.mark.parametrize(
    "size",
    [
        "tiny",
        pytest.param("s", marks=pytest.mark.slow),
        pytest.param("m", marks=pytest.mark.slow),
        pytest.param("l", marks=pytest.mark.slow),
        pytest.param("x", marks=pytest.mark.slow),
    ],
)
def test_same_outputs_losses_and_predictions_as_mmdetection(size):
    from compare_mmdet_rtmdet_ins import compare

    row = compare(size)
    assert row.pre < 1e-4
    assert row.head < 1e-5
    assert row.loss_cls < 1e-4 and row.loss_bbox < 1e-4 and row.loss_mask < 1e-4
    assert row.bn_stats < 1e-5
    assert min(row.loss_ref) > 0  # the targets produced positives: every loss term is live
    assert row.n_det[0] == row.n_det[1] > 0
    assert row.labels_equal and row.box < 1e-3 and row.score < 1e-5
    assert row.mask_pixels < 1e-4


def test_recorded_key_fixture_matches_this_mmdetection():
    """The CI fixture (tests/models/fixtures/rtmdet_ins_keys.json.gz) is what this MMDetection builds."""
    import gzip
    import json

    from mmdet_rtmdet_ins_env import build_mmdet_rtmdet_ins

    fixture = Path(__file__).parent / "fixtures" / "rtmdet_ins_keys.json.gz"
    rec = json.loads(gzip.decompress(fixture.read_bytes()))
    model, _ = build_mmdet_rtmdet_ins("tiny", 80)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == rec["sizes"]["tiny"]["keys"]
