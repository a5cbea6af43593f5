"""Matching, per-image AP and the confusion matrix, on masks whose IoUs are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instseg.data.masks import mask_to_rle
from instseg.report.matching import IGNORED, UNMATCHED, confusion_matrix, interpolated_ap, match_image


def box(x1, y1, x2, y2, h=40, w=40):
    m = np.zeros((h, w), np.uint8)
    m[y1:y2, x1:x2] = 1
    return mask_to_rle(m)


A, A_SHIFT, B, FAR = box(0, 0, 10, 10), box(0, 0, 10, 8), box(20, 20, 30, 30), box(30, 0, 40, 10)


@pytest.mark.parametrize("preds, gt_cls, crowd, status, gt_scores", [
    # one exact hit, one miss
    ([(A, 0, 0.9)], [0, 0], [False, False], [1], [0.9, UNMATCHED]),
    # the higher score takes the ground truth; the duplicate is a false positive
    ([(A, 0, 0.6), (A_SHIFT, 0, 0.8)], [0, 0], [False, False], [0, 1], [0.8, UNMATCHED]),
    # wrong class: false positive, ground truth missed
    ([(A, 1, 0.9)], [0, 0], [False, False], [0], [UNMATCHED, UNMATCHED]),
    # a prediction on a crowd region is ignored; the crowd region is never missed
    ([(B, 0, 0.7)], [0, 0], [False, True], [-1], [UNMATCHED, IGNORED]),
    # far away: false positive
    ([(FAR, 0, 0.9)], [0, 0], [False, False], [0], [UNMATCHED, UNMATCHED]),
])
def test_match_image(preds, gt_cls, crowd, status, gt_scores):
    m = match_image([A, B], gt_cls, crowd, [p[0] for p in preds], [p[1] for p in preds], [p[2] for p in preds])
    assert m.pred_status == status
    assert m.gt_match_score == pytest.approx(gt_scores)


def test_errors_follow_the_threshold():
    m = match_image([A, B], [0, 0], [False, False], [A, B, FAR], [0, 0, 0], [0.9, 0.3, 0.5])
    assert m.errors(0.0) == 1  # FAR only
    assert m.errors(0.4) == 2  # FAR + B missed (its match is below 0.4)
    assert m.errors(0.95) == 2  # nothing kept: both missed
    assert m.ap50 == pytest.approx(interpolated_ap([1, 0, 1], 2))


@pytest.mark.parametrize("tp, n_gt, ap", [
    ([1, 1], 2, 1.0), ([], 3, 0.0), ([0, 1], 1, 0.5), ([1, 0, 1], 2, (51 * 1.0 + 50 * 2 / 3) / 101),
])
def test_interpolated_ap(tp, n_gt, ap):
    assert interpolated_ap(tp, n_gt) == pytest.approx(ap)
    assert math.isnan(interpolated_ap(tp, 0))


def test_confusion_matrix_background_row_and_column():
    images = [([A, B], [0, 1], [False, False], [A, FAR, B], [1, 0, 1], [0.9, 0.9, 0.1])]
    cm = confusion_matrix(images, nc=2, conf=0.25)
    assert cm.shape == (3, 3)
    assert cm[1, 0] == 1  # A predicted as class 1, true class 0
    assert cm[0, 2] == 1  # FAR: a false positive of class 0 (background column)
    assert cm[2, 1] == 1  # B below the score: missed (background row)
    assert cm.sum() == 3
