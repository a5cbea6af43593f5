"""instseg's SOLOv2 against MMDetection 3.3.0 (runs only where mmdet and mmcv import; skipped elsewhere).

Run where MMDetection lives, e.g.: PYTHONPATH=src /tmp/mmenv/bin/python -m pytest tests/models/test_solov2_mmdet.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("mmdet", reason="MMDetection is not installed here (a scratch env with mmdet 3.3.0 + mmcv 2.x runs this)")
pytest.importorskip("mmcv.ops", reason="mmcv with compiled ops is not installed here")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))


@pytest.mark.slow
@pytest.mark.parametrize("size", ["nano", "medium", "light-r18", "r50"])
def test_same_outputs_losses_and_masks_as_mmdetection(size):
    from compare_mmdet_solov2 import compare

    row = compare(size)
    assert row.preprocess < 1e-4
    assert row.head < 1e-5
    assert row.loss_mask < 1e-4 and row.loss_cls < 1e-4
    assert row.n_det[0] == row.n_det[1] > 0
    assert row.mask_pixels_diff == 0 and row.labels_equal and row.score < 1e-5
