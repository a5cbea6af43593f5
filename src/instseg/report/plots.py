"""The report's plots, drawn with matplotlib's object API (no pyplot state) and saved as PNG and SVG.

Every function returns a :class:`matplotlib.figure.Figure`; :func:`save` writes ``<stem>.png`` and
``<stem>.svg`` atomically. PR curves read the evaluator's own accumulated ``precision`` array
(``[T, R, K, A, M]``, see :mod:`instseg.evaluation.metrics`) at area "all" and 100 detections: what a curve
shows is exactly what the mAP numbers average.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from instseg.report.geometry import class_color

REC_THRS = np.linspace(0.0, 1.0, 101)


def _figure(w: float, h: float, layout: str | None = "constrained"):
    """A figure; ``layout=None`` for plain axes with fixed margins (constrained layout costs seconds of text
    measuring on a many-panel figure)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100, layout=layout)
    if layout is None:
        fig.subplots_adjust(left=0.11, right=0.97, bottom=0.11, top=0.92, wspace=0.32, hspace=0.45)
    return fig


def save(fig, folder: Path, stem: str) -> dict[str, Path]:
    """Write ``folder/stem.png`` and ``folder/stem.svg``; returns both paths."""
    from instseg.io import atomic_write

    out = {}
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=110 if ext == "png" else None, metadata=_metadata(ext))
        fig.set_layout_engine("none")  # the layout of the first save is kept: text is laid out once, not per file
        out[ext] = atomic_write(Path(folder) / f"{stem}.{ext}", lambda f: f.write(buf.getvalue()), binary=True)
    return out


def _metadata(ext: str) -> dict:
    return {"Software": "instseg"} if ext == "png" else {"Creator": "instseg", "Date": None}


# --------------------------------------------------------------------------------------------- PR curves
def pr_arrays(arrays, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """(precision ``[K, 101]`` per category with NaN where a category has no ground truth, mean ``[101]``
    over the categories that have some) at IoU ``iou``, area all, 100 detections."""
    t = int(np.flatnonzero(np.isclose(arrays.iou_thrs, iou))[0])
    a, m = arrays.area_labels.index("all"), arrays.max_dets.index(max(arrays.max_dets))
    prec = np.asarray(arrays.precision[t, :, :, a, m], np.float64).T  # [K, R]
    prec = np.where(prec < 0, np.nan, prec)
    valid = ~np.isnan(prec).all(axis=1)
    mean = np.nanmean(prec[valid], axis=0) if valid.any() else np.zeros(prec.shape[1])
    return prec, mean


def pr_data(arrays, names: Sequence[str]) -> dict:
    """JSON-ready PR curves of one IoU type: ``{"recall": [101], "iou50": {"mean": [...], "per_class":
    {name: [...] or None}}, "iou75": {...}}`` (the form compare.json carries per run)."""
    out: dict = {"recall": [round(float(r), 2) for r in REC_THRS]}
    for key, iou in (("iou50", 0.5), ("iou75", 0.75)):
        prec, mean = pr_arrays(arrays, iou)
        out[key] = {"mean": [round(float(v), 5) for v in mean],
                    "per_class": {n: None if np.isnan(prec[k]).all() else [round(float(v), 5) for v in prec[k]]
                                  for k, n in enumerate(names[: len(prec)])}}
    return out


def pr_figure(curves: Mapping[str, Sequence[float]], mean: Sequence[float] | None, title: str,
              mean_label: str = "all classes"):
    """Precision over recall: one thin line per entry of ``curves`` (legend when at most 12), ``mean`` bold."""
    fig = _figure(6.4, 4.8, layout=None)
    ax = fig.add_subplot()
    many = len(curves) > 12
    for k, (name, prec) in enumerate(curves.items()):
        if prec is None:
            continue
        p = np.asarray(prec, np.float64)
        label = None if many else f"{name} {np.nanmean(p):.3f}"
        ax.plot(REC_THRS, p, lw=0.8 if many else 1.2, color="#bbbbbb" if many else class_color(k), label=label)
    if mean is not None:
        m = np.asarray(mean, np.float64)
        ax.plot(REC_THRS, m, lw=2.6, color="#1f4e99", label=f"{mean_label} {np.nanmean(m):.3f}")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    return fig


# ------------------------------------------------------------------------------------------ results.csv
def _col(rows: Sequence[Mapping[str, str]], key: str) -> np.ndarray:
    vals = []
    for r in rows:
        v = r.get(key, "")
        vals.append(float(v) if v not in ("", None) else math.nan)
    return np.asarray(vals, np.float64)


def results_figure(rows: Sequence[Mapping[str, str]]):
    """Ultralytics' results.png: one panel per loss term and metric of results.csv over the epochs."""
    keys = [k for k in (rows[0].keys() if rows else []) if k.startswith(("train/", "metrics/"))]
    keys = [k for k in keys if not np.isnan(_col(rows, k)).all()] or ["train/loss"]
    cols = min(5, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig = _figure(3.0 * cols, 2.4 * nrows, layout=None)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.08, top=0.93)
    epochs = _col(rows, "epoch")
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrows, cols, i + 1)
        y = _col(rows, key)
        ok = ~np.isnan(y)
        ax.plot(epochs[ok], y[ok], marker=".", lw=1.5, color="#1f77b4" if key.startswith("train/") else "#d62728")
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return fig


def lr_figure(rows: Sequence[Mapping[str, str]]):
    """Learning rate of each parameter group at the end of every epoch."""
    fig = _figure(6.4, 3.6, layout=None)
    fig.subplots_adjust(left=0.14, bottom=0.15)
    ax = fig.add_subplot()
    epochs = _col(rows, "epoch")
    for g in range(3):
        y = _col(rows, f"lr/pg{g}")
        if not np.isnan(y).all():
            ax.plot(epochs, y, marker=".", label=f"pg{g}")
    ax.set(xlabel="epoch", ylabel="learning rate", title="Learning rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------------------------- matrices and bars
def confusion_figure(cm: np.ndarray, names: Sequence[str], conf: float):
    """The confusion matrix, each column normalized (the share of a true class predicted as each row)."""
    labels = [*names, "background"]
    n = len(labels)
    side = min(max(5.0, 0.22 * n + 2.5), 22.0)
    fig = _figure(side, side * 0.85)
    ax = fig.add_subplot()
    col = cm.sum(axis=0, keepdims=True).astype(np.float64)
    norm = np.divide(cm, col, out=np.zeros(cm.shape), where=col > 0)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fs = 8 if n <= 12 else max(3, int(140 / n))
    ax.set_xticks(range(n), labels, rotation=90, fontsize=fs)
    ax.set_yticks(range(n), labels, fontsize=fs)
    ax.set(xlabel="True", ylabel="Predicted", title=f"Confusion matrix (mask IoU >= 0.5, score >= {conf:g})")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=fs,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, shrink=0.7)
    return fig


def bars_figure(values: Mapping[str, float], title: str, xlabel: str, second: Mapping[str, float] | None = None,
                second_label: str = ""):
    """Horizontal bars, largest first (NaN entries dropped); ``second`` drawn as a lighter bar behind."""
    items = sorted(((k, v) for k, v in values.items() if v is not None and not math.isnan(v)), key=lambda kv: kv[1])
    fig = _figure(6.4, max(2.0, 0.22 * len(items) + 1.2))
    ax = fig.add_subplot()
    ys = np.arange(len(items))
    if second:
        ax.barh(ys, [second.get(k) or 0.0 for k, _ in items], color="#9ecae1", label=second_label)
    ax.barh(ys, [v for _, v in items], color="#1f4e99", height=0.5 if second else 0.8, label=xlabel)
    ax.set_yticks(ys, [k for k, _ in items], fontsize=7 if len(items) > 20 else 9)
    ax.set(title=title, xlabel=xlabel)
    ax.grid(axis="x", alpha=0.3)
    if second:
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig


def histogram_figure(counts: Sequence[float], labels: Sequence[str], title: str, xlabel: str, ylabel: str = "count"):
    """One bar per label (a class histogram, instances per image, COCO size ranges)."""
    fig = _figure(min(max(5.0, 0.16 * len(labels) + 2), 18.0), 3.4)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    ax.bar(x, counts, color="#1f77b4")
    ax.set_xticks(x, labels, rotation=90 if len(labels) > 12 else 0, fontsize=6 if len(labels) > 40 else 8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    return fig


def heatmap_figure(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str):
    """A runs x classes AP heatmap (NaN cells blank)."""
    fig = _figure(min(max(6.0, 0.25 * len(cols) + 3), 24.0), 0.45 * len(rows) + 2.2)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7 if len(cols) > 20 else 9)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def scatter_figure(points: Sequence[tuple[str, float, float]], title: str, xlabel: str, ylabel: str):
    """Labelled points ``(label, x, y)``."""
    fig = _figure(6.4, 4.4, layout=None)
    ax = fig.add_subplot()
    for k, (label, x, y) in enumerate(points):
        ax.scatter([x], [y], s=60, color=class_color(k), zorder=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return fig


__all__ = ["save", "pr_arrays", "pr_data", "pr_figure", "results_figure", "lr_figure", "confusion_figure",
           "bars_figure", "histogram_figure", "heatmap_figure", "scatter_figure", "REC_THRS"]
