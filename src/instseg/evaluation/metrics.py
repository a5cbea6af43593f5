"""COCO metrics as typed records, computed from COCOeval's accumulated arrays by pure functions.

Both evaluation engines (faster-coco-eval and pycocotools) fill the same arrays after ``accumulate()``:

* ``precision[T, R, K, A, M]``: interpolated precision at IoU threshold ``T`` (0.50:0.05:0.95), recall
  threshold ``R`` (0:0.01:1), category ``K``, area range ``A`` (all, small, medium, large) and max
  detections ``M`` (1, 10, 100); ``-1`` where a category has no ground truth.
* ``recall[T, K, A, M]``: the recall reached, ``-1`` likewise.

:func:`summarize` reduces them exactly as ``COCOeval.summarize()`` does (mean over the entries that are not
``-1``), so instseg's numbers do not depend on an engine's printing code. A value COCOeval reports as ``-1``
(nothing to average: no ground truth in that area range, or no ground truth at all) becomes ``NaN`` here
and is shown as ``-`` in tables and ``null`` in JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The 12 numbers of ``COCOeval.summarize()`` in its order: (field, IoU threshold or None for all,
#: area range label, max detections).
SUMMARY_SPEC: tuple[tuple[str, float | None, str, int], ...] = (
    ("AP", None, "all", 100),
    ("AP50", 0.5, "all", 100),
    ("AP75", 0.75, "all", 100),
    ("APs", None, "small", 100),
    ("APm", None, "medium", 100),
    ("APl", None, "large", 100),
    ("AR1", None, "all", 1),
    ("AR10", None, "all", 10),
    ("AR100", None, "all", 100),
    ("ARs", None, "small", 100),
    ("ARm", None, "medium", 100),
    ("ARl", None, "large", 100),
)

#: Flat key suffix used by :meth:`Metrics.to_dict` for each field ("segm_mAP", "bbox_mAP50", ...).
FLAT_NAMES: dict[str, str] = {
    "AP": "mAP",
    "AP50": "mAP50",
    "AP75": "mAP75",
    "APs": "mAPs",
    "APm": "mAPm",
    "APl": "mAPl",
    "AR1": "AR1",
    "AR10": "AR10",
    "AR100": "AR100",
    "ARs": "ARs",
    "ARm": "ARm",
    "ARl": "ARl",
}


@dataclass(frozen=True)
class EvalArrays:
    """What one ``COCOeval.accumulate()`` produced, engine-independent."""

    precision: np.ndarray  # [T, R, K, A, M], -1 = no ground truth
    recall: np.ndarray  # [T, K, A, M], -1 = no ground truth
    iou_thrs: np.ndarray  # [T]
    area_labels: tuple[str, ...]  # [A], e.g. ("all", "small", "medium", "large")
    max_dets: tuple[int, ...]  # [M], e.g. (1, 10, 100)
    cat_ids: tuple[int, ...]  # [K], COCO category ids in the order of axis K

    @classmethod
    def from_cocoeval(cls, ev) -> EvalArrays:
        """The arrays of a ``COCOeval`` (pycocotools or faster-coco-eval) after ``accumulate()``."""
        p = ev.params
        return cls(
            precision=np.asarray(ev.eval["precision"], dtype=np.float64),
            recall=np.asarray(ev.eval["recall"], dtype=np.float64),
            iou_thrs=np.asarray(p.iouThrs, dtype=np.float64),
            area_labels=tuple(p.areaRngLbl),
            max_dets=tuple(int(m) for m in p.maxDets),
            cat_ids=tuple(int(c) for c in p.catIds),
        )


def _mean_valid(values: np.ndarray) -> float:
    """Mean of the entries > -1 (COCOeval's rule), NaN when there are none."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else math.nan


def _index(arrays: EvalArrays, iou: float | None, area: str, max_det: int) -> tuple[slice | int, int, int]:
    t: slice | int = slice(None)
    if iou is not None:
        hits = np.flatnonzero(np.isclose(arrays.iou_thrs, iou))
        if hits.size == 0:
            raise ValueError(
                f"IoU threshold {iou} is not among the evaluated ones {arrays.iou_thrs.tolist()}"
            )
        t = int(hits[0])
    return t, arrays.area_labels.index(area), arrays.max_dets.index(max_det)


def summarize(arrays: EvalArrays) -> dict[str, float]:
    """The 12 COCO summary numbers (keys of :data:`SUMMARY_SPEC`), as ``COCOeval.summarize()`` computes
    them, with NaN where COCOeval prints -1. Values are fractions in [0, 1]."""
    out: dict[str, float] = {}
    for name, iou, area, max_det in SUMMARY_SPEC:
        t, a, m = _index(arrays, iou, area, max_det)
        if name.startswith("AP"):
            out[name] = _mean_valid(arrays.precision[t, :, :, a, m])
        else:
            out[name] = _mean_valid(arrays.recall[t, :, a, m])
    return out


def per_class_ap(arrays: EvalArrays, iou: float | None = None) -> np.ndarray:
    """AP per category (axis K of ``precision``) over all areas at 100 detections: averaged over every IoU
    threshold when ``iou`` is None (AP50-95), else at that threshold. NaN for categories without ground
    truth."""
    t, a, m = _index(arrays, iou, "all", 100)
    prec = arrays.precision[t, :, :, a, m]  # [T?, R, K]
    prec = prec.reshape(-1, prec.shape[-1])
    valid = prec > -1  # COCOeval's rule, per column
    count = valid.sum(axis=0)
    total = np.where(valid, prec, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float64)


@dataclass
class TypeMetrics:
    """COCO metrics of one IoU type ("segm" or "bbox"); fractions in [0, 1], NaN = not defined (no ground
    truth in that area range)."""

    AP: float  # AP at IoU 0.50:0.95, area all, 100 detections
    AP50: float
    AP75: float
    APs: float  # small: area < 32^2 pixels
    APm: float  # medium: 32^2 <= area < 96^2
    APl: float  # large: area >= 96^2
    AR1: float  # AR with at most 1 detection per image and class
    AR10: float
    AR100: float
    ARs: float
    ARm: float
    ARl: float
    per_class: dict[str, float] = field(default_factory=dict)  # class name -> AP50-95, NaN without GT
    per_class_ap50: dict[str, float] = field(default_factory=dict)  # class name -> AP50
    arrays: EvalArrays | None = field(default=None, repr=False, compare=False)  # what accumulate() left
    """The engine's accumulated precision/recall arrays (PR curves read them); None when read from JSON."""

    @classmethod
    def from_arrays(cls, arrays: EvalArrays, names: dict[int, str]) -> TypeMetrics:
        """Build from accumulated arrays; ``names`` maps COCO category id -> class name."""
        ap = per_class_ap(arrays)
        ap50 = per_class_ap(arrays, 0.5)
        labels = [names.get(c, str(c)) for c in arrays.cat_ids]
        return cls(
            **summarize(arrays),
            per_class={n: float(v) for n, v in zip(labels, ap, strict=True)},
            per_class_ap50={n: float(v) for n, v in zip(labels, ap50, strict=True)},
            arrays=arrays,
        )

    def summary(self) -> dict[str, float]:
        """The 12 summary numbers, keyed as in :data:`SUMMARY_SPEC`."""
        return {name: getattr(self, name) for name, *_ in SUMMARY_SPEC}


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


@dataclass
class Metrics:
    """The result of :func:`instseg.evaluation.evaluate`: one :class:`TypeMetrics` per evaluated IoU type."""

    segm: TypeMetrics | None = None
    bbox: TypeMetrics | None = None
    engine: str = "faster"
    num_images: int = 0  # images in the ground truth (all are evaluated, with or without predictions)
    num_predictions: int = 0

    def types(self) -> dict[str, TypeMetrics]:
        """The evaluated IoU types, segm first."""
        return {k: v for k, v in (("segm", self.segm), ("bbox", self.bbox)) if v is not None}

    def to_dict(self, json_safe: bool = False) -> dict:
        """Flat keys: ``segm_mAP``, ``segm_mAP50``, ``segm_mAP75``, ``segm_mAPs|m|l``, ``segm_AR1|10|100``,
        ``segm_ARs|m|l``, the same with ``bbox_``, ``segm_per_class`` / ``bbox_per_class`` (name -> AP50-95)
        and ``segm_per_class_AP50`` / ``bbox_per_class_AP50``.
        ``json_safe=True`` turns NaN into None (``null`` in JSON)."""
        out: dict = {}
        for prefix, tm in self.types().items():
            for name, value in tm.summary().items():
                out[f"{prefix}_{FLAT_NAMES[name]}"] = value
            out[f"{prefix}_per_class"] = dict(tm.per_class)
            out[f"{prefix}_per_class_AP50"] = dict(tm.per_class_ap50)
        out["engine"] = self.engine
        out["num_images"] = self.num_images
        out["num_predictions"] = self.num_predictions
        return _json_safe(out) if json_safe else out

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` (NaN as null) to ``path`` as JSON, atomically."""
        from instseg.data.coco import write_json_atomic

        return write_json_atomic(path, self.to_dict(json_safe=True))

    def table(self) -> str:
        """A text table: segm and bbox side by side, then AP per class."""
        from instseg.evaluation.tables import render_metrics

        return render_metrics(self)

    @staticmethod
    def from_dict(d: dict) -> Metrics:
        """Inverse of :meth:`to_dict` (None read back as NaN)."""
        kinds = {}
        for prefix in ("segm", "bbox"):
            if f"{prefix}_mAP" not in d:
                continue
            values = {
                name: math.nan if d[f"{prefix}_{flat}"] is None else float(d[f"{prefix}_{flat}"])
                for name, flat in FLAT_NAMES.items()
            }
            per = {
                k: math.nan if v is None else float(v) for k, v in d.get(f"{prefix}_per_class", {}).items()
            }
            per50 = {
                k: math.nan if v is None else float(v)
                for k, v in d.get(f"{prefix}_per_class_AP50", {}).items()
            }
            kinds[prefix] = TypeMetrics(**values, per_class=per, per_class_ap50=per50)
        return Metrics(
            segm=kinds.get("segm"),
            bbox=kinds.get("bbox"),
            engine=d.get("engine", "faster"),
            num_images=int(d.get("num_images", 0)),
            num_predictions=int(d.get("num_predictions", 0)),
        )


__all__ = ["EvalArrays", "Metrics", "TypeMetrics", "summarize", "per_class_ap", "SUMMARY_SPEC"]
