"""What a search leaves besides Ray's own folder: ``trials.csv`` (one row per trial: status, epochs run,
whether ASHA stopped it, its sampled settings and scores, its run folder) and ``best.yaml`` (the best
trial's full TrainConfig, as a run's config.yaml, so ``instseg train --config best.yaml`` retrains it)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace
from pathlib import Path

from instseg.io import atomic_write_text
from instseg.tune.trial import REPORTED


def trial_rows(results, keys: list[str], epochs: int, ray_status: dict | None = None) -> list[dict]:
    """One dict per Ray result (a ``ResultGrid``): trial, status, epochs, stopped_early, scores, settings.
    ``ray_status``: trial id -> Ray's status (TERMINATED, RUNNING, PAUSED, PENDING, ERROR); a trial Ray
    terminated before its final report was stopped by ASHA, one still RUNNING/PENDING was interrupted."""
    rows = []
    for r in results:
        m = r.metrics or {}
        trial = m.get("trial_id") or Path(str(r.path)).name
        done = int(m.get("epoch", 0) or 0)
        live = (ray_status or {}).get(trial, "TERMINATED") not in ("TERMINATED", "ERROR")
        if r.error is not None:
            status = "error"
        elif m.get("final"):
            status = "completed" if done >= epochs else "early-stopped (patience)"
        elif live:
            status = "interrupted" if m else "pending"
        else:
            status = "stopped (ASHA)" if m else "pending"
        row = {"trial": trial, "status": status, "epochs": done, "stopped_early": status == "stopped (ASHA)"}
        row.update({k: m.get(k) for k in (*REPORTED, "train_loss")})
        row.update({k: (r.config or {}).get(k) for k in keys})
        row["run"] = m.get("run", "")
        rows.append(row)
    return sorted(rows, key=lambda row: row["trial"])


def pick_best(rows: list[dict], metric: str, mode: str) -> dict | None:
    """The best row by ``metric``: among trials that ran every epoch, else among all that reported it; a tie
    goes to the higher bbox_mAP, then the lower train_loss."""
    def ok(row):
        v = row.get(metric)
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    sign = 1 if mode == "max" else -1

    def key(r):  # ties (every mask mAP 0 early on) go to the better box mAP, then the lower loss
        return (sign * r[metric], _num(r.get("bbox_mAP")), -_num(r.get("train_loss"), -math.inf))

    for pool in ([r for r in rows if r["status"] == "completed" and ok(r)], [r for r in rows if ok(r)]):
        if pool:
            return max(pool, key=key)
    return None


def _num(v, missing: float = -math.inf) -> float:
    return missing if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def write_trials_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        atomic_write_text(path, "trial,status\n")
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def write_best_yaml(path: Path, search: dict, best: dict) -> Path:
    """The best trial's TrainConfig (its sampled values on the base), a new run ``<experiment>/best``."""
    from instseg.config import save_yaml
    from instseg.tune.trial import trial_config

    keys = [k for k, _kind, _args in search["dists"]]
    cfg = trial_config(search, {k: best[k] for k in keys if best.get(k) is not None}, "best")
    save_yaml(replace(cfg, exist_ok=False, quiet=False), path)
    return path


def format_table(rows: list[dict], metric: str) -> str:
    """trials.csv as an aligned text table (scores and sampled settings to 4 significant digits)."""
    skip = {"run", "fitness", "segm_mAP75", "bbox_mAP50"}
    cols = [c for c in (rows[0] if rows else {}) if c not in skip]
    cols = ["trial", "status", "epochs", metric] + [c for c in cols if c not in ("trial", "status", "epochs", metric)]

    def cell(v) -> str:
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    table = [cols] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table)


def read_trials_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


__all__ = ["trial_rows", "pick_best", "write_trials_csv", "write_best_yaml", "read_trials_csv", "format_table"]
