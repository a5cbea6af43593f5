"""The comparison page of a compare folder (``compare.json``, schema in :mod:`instseg.report.compare_schema`):
the leaderboard with confidence intervals, the per-class AP heatmap (runs x classes), the PR curves of every
run overlaid, latency against mAP, and the same val images side by side across runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from instseg.report.compare_schema import load_compare
from instseg.report.html import esc, figure, fmt, legend, page, table

SIDE_BY_SIDE = 12  # val images shown side by side


def _ci(run: dict, key: str) -> str:
    ci = (run.get("ci") or {}).get(key)
    return "" if not ci else f" [{fmt(ci[0])}, {fmt(ci[1])}]"


def _metric(run: dict, kind: str, key: str) -> float:
    v = ((run.get("metrics") or {}).get(kind) or {}).get(key)
    return math.nan if v is None else float(v)


def _pr_of(run: dict, data: Path | None, names: list[str]) -> dict | None:
    """The run's segm PR curves: inline, else its report/pr.json, else computed from its predictions."""
    if (run.get("pr") or {}).get("segm"):
        return run["pr"]["segm"]
    rd = Path(run["run_dir_abs"]) if run.get("run_dir_abs") else None
    if rd is None:
        return None
    if (rd / "report" / "pr.json").exists():
        return json.loads((rd / "report" / "pr.json").read_text()).get("segm")
    if data is not None and (rd / "predictions" / "val.json").exists():
        from instseg.report.plots import pr_data
        from instseg.report.run_report import evaluation_inputs

        *_, metrics = evaluation_inputs(rd, data)
        return pr_data(metrics.segm.arrays, names) if metrics.segm is not None else None
    return None


def _side_by_side(rep: Path, doc: dict, data: Path, names: list[str]) -> tuple[str, int]:
    """Rows of the same val images, one card per run; returns (html, number of runs shown)."""
    from instseg.evaluation import load_results
    from instseg.report.eval_page import eval_card, match_images
    from instseg.report.run_report import load_val

    records, names_ds, gt = load_val(data)
    records = sorted(records, key=lambda r: r.path.name)[:SIDE_BY_SIDE]
    cat_to_cls = {c["id"]: k for k, c in enumerate(gt["categories"])}
    runs = [r for r in doc["runs"] if r.get("run_dir_abs")
            and (Path(r["run_dir_abs"]) / "predictions" / "val.json").exists()]
    if not runs:
        return "", 0
    per_run = {}
    wanted = {r.image_id for r in records}
    for run in runs:
        results = [x for x in load_results(Path(run["run_dir_abs"]) / "predictions" / "val.json")
                   if int(x["image_id"]) in wanted]
        per_run[run["name"]] = match_images(records, results, cat_to_cls, rep)
    rows = []
    for i, rec in enumerate(records):
        cells = "".join(eval_card(per_run[run["name"]][i], rep, names_ds, label=run["name"], prefix="") for run in runs)
        rows.append(f'<div class="side" data-image="{esc(rec.path.name)}">{cells}</div>')
    return "".join(rows), len(runs)


def write_compare_report(compare: str | Path, *, data: Path | None = None) -> Path:
    """Write ``<compare folder>/report/index.html`` (and its plots); returns the index path."""
    from instseg.io import atomic_write_text
    from instseg.report import plots
    from instseg.report.eval_page import DEFAULT_THR, DRAW_FLOOR
    from instseg.report.geometry import class_color

    doc = load_compare(compare)
    folder = Path(doc["_path"]).parent
    rep, pdir = folder / "report", folder / "report" / "plots"
    runs = sorted(doc["runs"], key=lambda r: -_metric(r, "segm", "mAP") if not math.isnan(_metric(r, "segm", "mAP"))
                  else 1.0)
    proto = doc["protocol"]
    data = Path(data) if data is not None else (Path(proto["data"]) if proto.get("data") else None)
    if data is not None and not data.exists():
        data = None
    names = list(doc["class_names"])
    figs = []

    rows = []
    for rank, r in enumerate(runs, 1):
        params = r.get("params")
        rows.append([rank, r["name"], r["architecture"], r.get("size", ""),
                     fmt(_metric(r, "segm", "mAP")) + _ci(r, "segm_mAP"), fmt(_metric(r, "segm", "mAP50")) + _ci(r, "segm_mAP50"),
                     fmt(_metric(r, "segm", "mAP75")) + _ci(r, "segm_mAP75"), fmt(_metric(r, "bbox", "mAP")) + _ci(r, "bbox_mAP"),
                     fmt(r.get("latency_ms"), ".1f"), fmt((r.get("latency") or {}).get("p90_ms"), ".1f"),
                     "-" if params is None else f"{float(params) / 1e6:.2f} M", fmt(r.get("gflops"), ".1f")])
    board = table(["#", "run", "architecture", "size", "mask mAP50-95 [CI]", "mask mAP50 [CI]", "mask mAP75 [CI]",
                   "box mAP50-95 [CI]", "latency ms/img (median)", "p90", "params", "GFLOPs"], rows,
                  [f'class="lb-row" data-run="{esc(r["name"])}"' for r in runs], cls="leaderboard")

    heat_rows = []
    if not names:
        names = sorted({c for r in runs for c in ((r.get("per_class_ap") or {}).get("segm") or {})})
    if names and any((r.get("per_class_ap") or {}).get("segm") for r in runs):
        mat = np.array([[_float(((r.get("per_class_ap") or {}).get("segm") or {}).get(c)) for c in names]
                        for r in runs])
        plots.save(plots.heatmap_figure(mat, [r["name"] for r in runs], names, "Mask AP50-95 per class"), pdir,
                   "per_class_heatmap")
        figs.append(figure("plots/per_class_heatmap.png", "plots/per_class_heatmap.svg", "mask AP per class"))
        heat_rows = [[r["name"], *(fmt(v) for v in mat[i])] for i, r in enumerate(runs)]
    curves = {}
    for r in runs:
        pr = _pr_of(r, data, names)
        if pr is not None:
            curves[r["name"]] = pr["iou50"]["mean"]
    if curves:
        plots.save(plots.pr_figure(curves, None, "Mask PR curves, IoU 0.5 (mean over classes)"), pdir, "pr_overlay")
        figs.append(figure("plots/pr_overlay.png", "plots/pr_overlay.svg", "mask PR curves of every run, IoU 0.5"))
    pts = [(r["name"], float(r["latency_ms"]), _metric(r, "segm", "mAP")) for r in runs if r.get("latency_ms") is not None]
    if pts:
        plots.save(plots.scatter_figure(pts, "Latency vs mask mAP", "latency (ms / image)", "mask mAP50-95"), pdir,
                   "latency_vs_map")
        figs.append(figure("plots/latency_vs_map.png", "plots/latency_vs_map.svg", "latency against mask mAP"))
    side, n_side = ("", 0) if data is None else _side_by_side(rep, doc, data, names)
    proto_rows = [[k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)] for k, v in proto.items()]
    body = (f"<h2>Leaderboard ({len(runs)} runs)</h2>{board}"
            f"<h2>Protocol</h2>{table(['setting', 'value'], proto_rows, cls='protocol') if proto_rows else '<p>-</p>'}"
            f'<h2>Plots</h2><div class="plots">{"".join(figs)}</div>')
    if heat_rows:
        body += f"<h2>AP per class</h2>{table(['run', *names], heat_rows, cls='heatmap')}"
    if side:
        body += (f"<h2>The same val images across {n_side} runs</h2>"
                 f'<div class="toolbar">{legend(names, [class_color(k) for k in range(len(names))])}</div>'
                 f'<div class="toolbar"><label>score &ge; <input type="range" id="score" min="{DRAW_FLOOR}" max="1" '
                 f'step="0.01" value="{DEFAULT_THR}"> <b id="score-value">{DEFAULT_THR:.2f}</b></label></div>{side}')
    index = rep / "index.html"
    atomic_write_text(index, page(f"Comparison: {folder.name}", body, home="index.html"))
    return index


def _float(v) -> float:
    return math.nan if v is None else float(v)


__all__ = ["write_compare_report", "SIDE_BY_SIDE"]
