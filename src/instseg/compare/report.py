"""The comparison as data (``compare.json``, schema ``instseg.compare/1``; ``compare.csv``) and as a terminal
table (rich), with the significant differences marked."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from instseg.compare.bootstrap import mean_std
from instseg.compare.score import KEYS, KINDS, pairwise

SCHEMA = "instseg.compare/1"


def _rel(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return os.path.relpath(Path(path).resolve(), Path(base).resolve())
    except ValueError:  # another drive
        return str(Path(path).resolve())


def build_document(entries, scores: dict, extras: dict, names: list[str], protocol: dict, out: Path) -> dict:
    runs, failed = [], []
    for e in entries:
        s = scores.get(e.name)
        if not e.ok or s is None:
            failed.append({"name": e.name, "architecture": e.architecture, "size": e.size,
                           "run_dir": _rel(e.root, out), "error": e.error or "not scored"})
            continue
        m, x = s.metrics, extras.get(e.name, {})
        lat = x.get("latency")
        run = {
            "name": e.name, "architecture": e.architecture, "size": e.size, "seed": e.seed,
            "run_dir": _rel(e.root, out), "resumed": e.resumed, "trained_on": e.trained_on,
            "params": x.get("params"),
            "gflops": x.get("gflops"),
            "latency_ms": None if lat is None else lat.ms_median,
            "latency": None if lat is None else {
                "median_ms": lat.ms_median, "p90_ms": lat.ms_p90, "mean_ms": lat.ms_mean, "device": lat.device,
                "batch": lat.batch, "images": lat.images, "distinct_images": lat.distinct_images,
                "warmup": lat.warmup, "threads": lat.threads, "per_image_ms": [round(t, 3) for t in lat.times_ms]},
            "peak_rss_mb": None if lat is None else lat.peak_rss_mb,
            "peak_cuda_mb": None if lat is None else lat.peak_cuda_mb,
            "train_s": e.train_s,
            "epochs_done": e.epochs_done,
            "metrics": {k: {key: m.get(f"{k}_{key}") for key in (*KEYS, "mAPs", "mAPm", "mAPl")} for k in KINDS},
            "ci": dict(s.ci),
            "per_class_ap": {k: m.get(f"{k}_per_class", {}) for k in KINDS},
            "pr": s.pr,
            "scored_from": s.source,
        }
        if e.metrics_json.get("ultralytics_metrics"):
            run["ultralytics_metrics"] = e.metrics_json["ultralytics_metrics"]
        for k in ("params_error", "gflops_error", "latency_error"):
            if x.get(k):
                run[k] = x[k]
        runs.append(run)
    doc = {"schema": SCHEMA, "protocol": protocol, "class_names": list(names), "runs": runs, "failed": failed,
           "pairwise": pairwise(scores) if len(scores) > 1 else []}
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(f"{r['architecture']}-{r['size']}", []).append(r)
    if any(len(g) > 1 for g in groups.values()):
        doc["seeds"] = {g: {f"{k}_{key}": mean_std(r["metrics"][k][key] for r in rs) for k in KINDS for key in KEYS}
                        | {"seeds": [r["seed"] for r in rs]} for g, rs in groups.items()}
    return doc


CSV_COLUMNS = ("name", "architecture", "size", "seed", "status", "segm_mAP", "segm_mAP_lo", "segm_mAP_hi",
               "segm_mAP50", "segm_mAP75", "segm_mAPs", "segm_mAPm", "segm_mAPl", "bbox_mAP", "bbox_mAP_lo",
               "bbox_mAP_hi", "bbox_mAP50", "ultralytics_mask_mAP50-95", "params_m", "gflops", "latency_ms",
               "latency_p90_ms", "peak_rss_mb", "epochs_done", "train_s", "error")


def _csv_rows(doc: dict) -> list[dict]:
    rows = []
    for r in doc["runs"]:
        row = {"name": r["name"], "architecture": r["architecture"], "size": r["size"], "seed": r.get("seed"),
               "status": "ok", "params_m": None if r.get("params") is None else r["params"] / 1e6,
               "gflops": r.get("gflops"),
               "latency_ms": r.get("latency_ms"), "peak_rss_mb": r.get("peak_rss_mb"), "train_s": r.get("train_s"),
               "epochs_done": r.get("epochs_done"),
               "latency_p90_ms": (r.get("latency") or {}).get("p90_ms"),
               "ultralytics_mask_mAP50-95": (r.get("ultralytics_metrics") or {}).get("mask_mAP50-95")}
        for k in KINDS:
            for key, v in r["metrics"][k].items():
                row[f"{k}_{key}"] = v
            lo, hi = r["ci"].get(f"{k}_mAP", [None, None])
            row[f"{k}_mAP_lo"], row[f"{k}_mAP_hi"] = lo, hi
        rows.append(row)
    for f in doc.get("failed", []):
        rows.append({"name": f["name"], "architecture": f["architecture"], "size": f["size"], "status": "failed",
                     "error": f["error"]})
    return rows


def write_outputs(doc: dict, out: Path) -> tuple[Path, Path]:
    from instseg.io import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    j = atomic_write_text(out / "compare.json", json.dumps(_json_safe(doc), indent=1))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for row in _csv_rows(doc):
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    c = atomic_write_text(out / "compare.csv", buf.getvalue())
    return j, c


def _json_safe(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _latency_cell(r: dict) -> str:
    lat = r.get("latency") or {}
    if r.get("latency_ms") is None:
        return "-"
    p90 = lat.get("p90_ms")
    return f"{r['latency_ms']:.1f}" + ("" if p90 is None else f"/{p90:.1f}")


def render_table(doc: dict, width: int = 160) -> str:
    """The comparison as text (rich): one row per run, best mask mAP first; ``*`` marks a run whose mask
    mAP is significantly (paired bootstrap, 95 %) above the next run's; then the pairwise probabilities,
    the failed entries and the protocol."""
    from rich.console import Console
    from rich.table import Table

    runs = sorted(doc["runs"], key=lambda r: -(r["metrics"]["segm"]["mAP"] or 0.0))
    pairs = {(p["a"], p["b"]): p for p in doc.get("pairwise", [])}

    def p_greater(a, b):
        if (a, b) in pairs:
            return pairs[(a, b)]["p_a_greater"]
        if (b, a) in pairs and pairs[(b, a)]["p_a_greater"] is not None:
            return 1.0 - pairs[(b, a)]["p_a_greater"]
        return None

    level = doc["protocol"].get("bootstrap", {}).get("level", 0.95)
    t = Table(title=f"instseg compare: {doc['protocol'].get('data')} ({doc['protocol'].get('split')}, "
                    f"{len(doc['runs'][0]['per_class_ap']['segm']) if doc['runs'] else 0} classes)")
    for col in ("run", "mask mAP", f"{int(level * 100)}% CI", "mAP50", "mAP75", "APs/APm/APl", "box mAP",
                "UL mask mAP", "params M", "GFLOPs", "ms/img p50/p90", "RSS MB", "epochs", "train s"):
        t.add_column(col, justify="left" if col == "run" else "right",  # names and AP triples stay whole
                     no_wrap=col in ("run", f"{int(level * 100)}% CI", "APs/APm/APl", "ms/img p50/p90"))
    for i, r in enumerate(runs):
        s, b = r["metrics"]["segm"], r["metrics"]["bbox"]
        lo, hi = r["ci"].get("segm_mAP", [None, None])
        mark = ""
        if i + 1 < len(runs):
            p = p_greater(r["name"], runs[i + 1]["name"])
            mark = " *" if p is not None and p >= 1 - (1 - level) / 2 else ""
        ul = (r.get("ultralytics_metrics") or {}).get("mask_mAP50-95")
        t.add_row(r["name"], _pct(s["mAP"]) + mark, f"{_pct(lo)}-{_pct(hi)}", _pct(s["mAP50"]), _pct(s["mAP75"]),
                  "/".join(_pct(s.get(k)) for k in ("mAPs", "mAPm", "mAPl")), _pct(b["mAP"]),
                  "-" if ul is None else _pct(ul),
                  "-" if r.get("params") is None else f"{r['params'] / 1e6:.2f}",
                  "-" if r.get("gflops") is None else f"{r['gflops']:.1f}",
                  _latency_cell(r),
                  "-" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}",
                  "-" if r.get("epochs_done") is None else str(r["epochs_done"]),
                  "-" if r.get("train_s") is None else f"{r['train_s']:.0f}")
    for f in doc.get("failed", []):
        t.add_row(f["name"], "FAILED", f["error"][:60], *([""] * 11))
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(t)
    console.print(f"* = mask mAP above the next row's with paired-bootstrap P > {1 - (1 - level) / 2:.3f} "
                  f"({doc['protocol'].get('bootstrap', {}).get('samples')} resamples of the val images). "
                  "mAP in %, instseg's evaluator at original resolution, conf 0.001, 100 detections; "
                  "UL mask mAP: Ultralytics' own validator (YOLO only), for reference.")
    lat, fl = doc["protocol"].get("latency") or {}, doc["protocol"].get("gflops") or {}
    if lat:
        console.print(f"ms/img: median/p90 over {lat.get('images')} val images timed one by one (batch 1, after "
                      f"{lat.get('warmup')} warm-up images, device {lat.get('device')}, {lat.get('threads')} threads), "
                      "decode + pre-processing + model + masks at original size. GFLOPs at "
                      f"{fl.get('imgsz')}x{fl.get('imgsz')}, batch 1: FLOPs/1e9 with 2 FLOPs per multiply-add "
                      "(as Ultralytics).")
    if doc.get("pairwise"):
        pt = Table(title="paired bootstrap: P(row's mask mAP > column's)")
        pt.add_column("")
        for r in runs:
            pt.add_column(r["name"], justify="right")
        for a in runs:
            cells = []
            for b in runs:
                p = None if a is b else p_greater(a["name"], b["name"])
                sig = p is not None and (p >= 1 - (1 - level) / 2 or p <= (1 - level) / 2)
                cells.append("" if p is None else f"{p:.3f}{' *' if sig else ''}")
            pt.add_row(a["name"], *cells)
        console.print(pt)
    for g, stats in (doc.get("seeds") or {}).items():
        m = stats["segm_mAP"]
        console.print(f"{g}: mask mAP over seeds {stats['seeds']}: {_pct(m['mean'])} ± {_pct(m['std'])}")
    for f in doc.get("failed", []):
        console.print(f"FAILED {f['name']}: {f['error']}")
    proto = doc["protocol"]
    console.print("protocol: " + ", ".join(f"{k}={proto[k]}" for k in ("epochs", "time", "imgsz", "settings", "schedule", "augment",
                                                                        "gt_sha256") if k in proto))
    return console.file.getvalue()


__all__ = ["SCHEMA", "build_document", "write_outputs", "render_table", "CSV_COLUMNS"]
