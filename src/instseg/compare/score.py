"""Score every entry with one evaluator on one ground truth, and bootstrap its mAPs over the val images.

The results scored are each run's ``predictions/val.json`` when the run predicted them under the compare
protocol (score threshold 0.001, at most 100 detections per image); otherwise the entry's weights predict
the val split again through ``Backend.evaluate`` with those settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instseg.compare import bootstrap as bs
from instseg.compare.runs import Entry, GroundTruth

CONF = 0.001
MAX_DET = 100
KINDS = ("segm", "bbox")
KEYS = ("mAP", "mAP50", "mAP75")


@dataclass
class Score:
    metrics: dict  # Metrics.to_dict(json_safe=True) of instseg's evaluator
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # "segm_mAP" -> [B] bootstrap values
    ci: dict[str, list] = field(default_factory=dict)  # "segm_mAP" -> [low, high]
    pr: dict = field(default_factory=dict)  # the schema's "pr" block (segm)
    source: str = ""  # where the scored results came from


def _results_for(entry: Entry, gt: GroundTruth, device: str, scratch: Path) -> tuple[list, str]:
    from instseg.contract import PredictConfig
    from instseg.evaluation import load_results

    cfg = entry.cfg
    preds = entry.root / "predictions" / "val.json"
    if preds.is_file() and getattr(cfg, "val_conf", 1.0) <= CONF and getattr(cfg, "max_det", 0) == MAX_DET:
        return load_results(preds), str(preds)
    from instseg.backends import backend_for_weights

    weights = entry.weights
    if weights is None:
        raise FileNotFoundError(f"{entry.root}: no weights/best.pt or last.pt to predict the val split with")
    pcfg = PredictConfig(imgsz=cfg.imgsz, conf=CONF, max_det=MAX_DET, device=device, names=gt.names)
    out = scratch / f"{entry.name}.val.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    backend_for_weights(weights, pcfg).evaluate(weights, gt.records, pcfg, out)
    return load_results(out), str(out)


def score_entry(entry: Entry, gt: GroundTruth, weights: np.ndarray, device: str, scratch: Path,
                level: float = 0.95) -> Score:
    """instseg's metrics of ``entry`` on ``gt``, and its bootstrap samples/intervals under ``weights``."""
    from instseg.evaluation import evaluate
    from instseg.evaluation.checks import check_results, load_ground_truth

    raw, source = _results_for(entry, gt, device, scratch)
    metrics = evaluate(gt.gt, raw).to_dict(json_safe=True)
    ground = load_ground_truth(gt.gt)
    results = check_results(raw, ground, source, need_segm=True, need_bbox=True)
    score = Score(metrics=metrics, source=source)
    for kind in KINDS:
        drop = "bbox" if kind == "segm" else "segmentation"
        per_kind = [{k: v for k, v in r.items() if k != drop} for r in results]
        ev = bs.per_image_eval(ground.dataset, per_kind, kind)
        acc = bs.accumulate(ev, weights)
        for key in KEYS:
            score.samples[f"{kind}_{key}"] = acc[key]
            score.ci[f"{kind}_{key}"] = bs.interval(acc[key], level)
        if kind == "segm":
            score.pr = {"segm": _pr_block(ev, gt.names)}
    return score


def _pr_block(ev: bs.PerImageEval, names: list[str]) -> dict:
    """Precision at the 101 recall points, IoU 0.5 and 0.75, mean over classes and per class."""
    per = np.stack([bs.precision_curves(c) for c in ev.cats])  # [K, T, R]
    block: dict = {"recall": [round(float(r), 2) for r in bs.REC_THRS]}
    for label, t in (("iou50", 0), ("iou75", 5)):
        curves = per[:, t, :]
        with np.errstate(all="ignore"), bs._quiet_nan_mean():
            mean = np.nanmean(curves, axis=0)
        block[label] = {
            "mean": [None if np.isnan(v) else float(v) for v in mean],
            "per_class": {names[k] if k < len(names) else str(c): (None if np.isnan(curves[k]).all() else
                          [float(v) for v in curves[k]]) for k, c in enumerate(ev.cat_ids)},
        }
    return block


def pairwise(scores: dict[str, Score], key: str = "segm_mAP") -> list[dict]:
    """For each ordered pair (A, B) of scored entries: the paired bootstrap P(A's ``key`` > B's)."""
    out = []
    names = list(scores)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            p = bs.prob_greater(scores[a].samples[key], scores[b].samples[key])
            out.append({"a": a, "b": b, "metric": key, "p_a_greater": p,
                        "significant": p is not None and (p >= 0.975 or p <= 0.025)})
    return out


__all__ = ["Score", "score_entry", "pairwise", "CONF", "MAX_DET"]
