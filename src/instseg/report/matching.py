"""Per-image matching of predictions to ground truth (what the evaluation page colours) and the confusion
matrix. Pure functions over COCO RLEs; IoUs come from pycocotools' ``mask.iou``.

* :func:`match_image` is COCOeval's greedy rule at one IoU threshold, within each class: predictions in
  descending score order each take the unmatched non-crowd ground truth of their class with the highest
  IoU >= ``iou_thr``; a prediction that matches nothing but covers a crowd region (IoU over its own area)
  is ignored, neither true nor false positive. Because the order is by score, the matches of the
  predictions above any score threshold are the same as in the full matching: the page re-colours at a new
  threshold without matching again (a ground truth is missed at threshold ``t`` when the score of its match
  is below ``t``).
* :func:`confusion_matrix` is the class-agnostic matching of Ultralytics' confusion matrix, with masks:
  predictions above ``conf``, pairs of IoU >= 0.5 taken by decreasing IoU, one partner each; rows are the
  predicted class, columns the true class, the last row and column the background (missed ground truth in
  the last row, false positives in the last column).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

UNMATCHED = -1.0  # gt_match_score of a ground truth that no prediction matched
IGNORED = -2.0  # gt_match_score of a crowd region (never counted as missed)


@dataclass
class ImageMatch:
    """The matching of one image at one IoU threshold."""

    gt_match_score: list[float] = field(default_factory=list)  # per GT: score of its match, UNMATCHED, IGNORED
    pred_status: list[int] = field(default_factory=list)  # per prediction: 1 true positive, 0 false, -1 ignored
    pred_iou: list[float] = field(default_factory=list)  # per prediction: IoU with its match (0 if none)
    pred_scores: list[float] = field(default_factory=list)
    ap50: float = math.nan  # mean over the classes with ground truth in this image of their AP at iou_thr

    def errors(self, score_thr: float) -> int:
        """False positives plus missed ground truth when only predictions >= ``score_thr`` are kept."""
        return self.false_positives(score_thr) + self.missed(score_thr)

    def false_positives(self, score_thr: float) -> int:
        return sum(1 for s, st in zip(self.pred_scores, self.pred_status) if st == 0 and s >= score_thr)

    def missed(self, score_thr: float) -> int:
        return sum(1 for m in self.gt_match_score if m != IGNORED and m < score_thr)


def _enc(rle: dict) -> dict:
    from instseg.data.masks import _encoded

    return _encoded(rle)


def _ious(preds: Sequence[dict], gts: Sequence[dict], crowd: Sequence[bool]) -> np.ndarray:
    from instseg.data.masks import coco_mask_api

    if not preds or not gts:
        return np.zeros((len(preds), len(gts)))
    iou = coco_mask_api().iou([_enc(r) for r in preds], [_enc(r) for r in gts], [int(c) for c in crowd])
    return np.asarray(iou, np.float64).reshape(len(preds), len(gts))


def interpolated_ap(tp: Sequence[int], n_gt: int) -> float:
    """COCO's 101-point interpolated AP of one ranked list (``tp`` 1/0 in score order) with ``n_gt`` targets."""
    if n_gt == 0:
        return math.nan
    tp_arr = np.asarray(tp, np.float64)
    if tp_arr.size == 0:
        return 0.0
    ctp, cfp = np.cumsum(tp_arr), np.cumsum(1.0 - tp_arr)
    recall, precision = ctp / n_gt, ctp / np.maximum(ctp + cfp, np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    rec_thrs = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, rec_thrs, side="left")
    return float(np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0).mean())


def match_image(gt_rles: Sequence[dict], gt_cls: Sequence[int], gt_crowd: Sequence[bool], pred_rles: Sequence[dict],
                pred_cls: Sequence[int], pred_scores: Sequence[float], iou_thr: float = 0.5) -> ImageMatch:
    """Greedy per-class matching of one image (see the module docstring)."""
    ious = _ious(pred_rles, gt_rles, gt_crowd)
    n_gt = len(gt_rles)
    gt_score = [IGNORED if gt_crowd[g] else UNMATCHED for g in range(n_gt)]
    status, best_iou = [0] * len(pred_rles), [0.0] * len(pred_rles)
    taken = [False] * n_gt
    order = sorted(range(len(pred_rles)), key=lambda i: -float(pred_scores[i]))
    for i in order:
        best, best_g = iou_thr - 1e-10, -1
        for g in range(n_gt):
            if gt_crowd[g] or taken[g] or gt_cls[g] != pred_cls[i]:
                continue
            if ious[i, g] > best:
                best, best_g = ious[i, g], g
        if best_g >= 0:
            taken[best_g], status[i], best_iou[i] = True, 1, float(ious[i, best_g])
            gt_score[best_g] = float(pred_scores[i])
        elif any(gt_crowd[g] and gt_cls[g] == pred_cls[i] and ious[i, g] >= iou_thr for g in range(n_gt)):
            status[i] = -1
    aps = []
    for c in sorted({int(gt_cls[g]) for g in range(n_gt) if not gt_crowd[g]}):
        ranked = [status[i] for i in order if pred_cls[i] == c and status[i] >= 0]
        aps.append(interpolated_ap(ranked, sum(1 for g in range(n_gt) if gt_cls[g] == c and not gt_crowd[g])))
    ap = float(np.mean(aps)) if aps else math.nan
    return ImageMatch(gt_match_score=gt_score, pred_status=status, pred_iou=best_iou, ap50=ap,
                      pred_scores=[float(s) for s in pred_scores])


def confusion_matrix(images: Sequence[tuple], nc: int, conf: float = 0.25, iou_thr: float = 0.5) -> np.ndarray:
    """``(nc + 1) x (nc + 1)`` counts over ``images``, each ``(gt_rles, gt_cls, gt_crowd, pred_rles,
    pred_cls, pred_scores)``; rows predicted class, columns true class, index ``nc`` the background."""
    cm = np.zeros((nc + 1, nc + 1), np.int64)
    for gt_rles, gt_cls, gt_crowd, pred_rles, pred_cls, pred_scores in images:
        gts = [g for g in range(len(gt_rles)) if not gt_crowd[g]]
        preds = [i for i in range(len(pred_rles)) if pred_scores[i] >= conf]
        ious = _ious([pred_rles[i] for i in preds], [gt_rles[g] for g in gts], [False] * len(gts))
        pairs = sorted(((ious[a, b], a, b) for a in range(len(preds)) for b in range(len(gts))
                        if ious[a, b] >= iou_thr), reverse=True)
        used_p, used_g = set(), set()
        for _, a, b in pairs:
            if a in used_p or b in used_g:
                continue
            used_p.add(a), used_g.add(b)
            cm[pred_cls[preds[a]], gt_cls[gts[b]]] += 1
        for b in range(len(gts)):
            if b not in used_g:
                cm[nc, gt_cls[gts[b]]] += 1
        for a in range(len(preds)):
            if a not in used_p:
                cm[pred_cls[preds[a]], nc] += 1
    return cm


__all__ = ["ImageMatch", "UNMATCHED", "IGNORED", "interpolated_ap", "match_image", "confusion_matrix"]
