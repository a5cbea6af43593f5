"""Training logs: results.csv (one row per epoch, the same columns for every backend), TensorBoard events,
a progress bar per epoch and a one-line summary per epoch (quiet with ``--quiet`` or without a TTY).

results.csv columns: :data:`FIXED_COLUMNS` first (epoch, time: seconds of the training epoch, time/val: seconds
of its validation pass, empty when not validated or not measured by the backend, total train loss, lr of the three parameter
groups, validation metrics, ``nan_recoveries``: non-finite losses recovered from so far, empty where the
backend does not recover), then ``train/<term>`` for each loss term of the model, in the model's order.
Metrics are fractions in [0, 1], empty when the epoch was not validated.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

METRIC_COLUMNS = ("segm_mAP", "segm_mAP50", "segm_mAP75", "bbox_mAP", "bbox_mAP50", "bbox_mAP75", "fitness")
FIXED_COLUMNS = ("epoch", "time", "time/val", "train/loss", "lr/pg0", "lr/pg1", "lr/pg2",
                 *(f"metrics/{m}" for m in METRIC_COLUMNS), "nan_recoveries")


def results_columns(loss_names: list[str]) -> list[str]:
    """The header of results.csv for a model whose loss terms are ``loss_names``."""
    return [*FIXED_COLUMNS, *(f"train/{n}" for n in loss_names)]


def fitness_of(metrics: dict, best_metric: str) -> float:
    """The number that picks best.pt: a flat metrics key, or 'fitness' = 0.1*segm_mAP50 + 0.9*segm_mAP."""
    if best_metric == "fitness":
        value = 0.1 * metrics.get("segm_mAP50", 0.0) + 0.9 * metrics.get("segm_mAP", 0.0)
    else:
        value = metrics.get(best_metric, 0.0)
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


class ResultsCSV:
    """Epoch rows of results.csv; a resumed run keeps the rows of the epochs it already finished.

    Every change rewrites the whole (small) file atomically, so a kill or a full disk mid-write leaves the
    previous complete file, never a half row; a full disk raises :class:`instseg.io.DiskFullError`.
    """

    def __init__(self, path: Path, loss_names: list[str]):
        self.path = Path(path)
        self.columns = results_columns(loss_names)

    def _rows(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        with self.path.open(newline="", encoding="utf-8", errors="replace") as f:
            return [r for r in csv.reader(f) if r]

    def _write(self, rows: list[list[str]]) -> None:
        import io as _io

        from instseg.io import atomic_write_text

        buf = _io.StringIO()
        csv.writer(buf).writerows(rows)
        atomic_write_text(self.path, buf.getvalue())

    def reset(self) -> None:
        """Forget the rows of an earlier run in the same folder."""
        self.path.unlink(missing_ok=True)

    def truncate_after(self, epoch: int) -> None:
        """Keep the complete rows with epoch <= ``epoch`` (1-based), one per epoch (the last written wins),
        in epoch order, so a resumed run rewrites what it redoes and never duplicates a row."""
        rows = self._rows()
        if not rows:
            return
        header, by_epoch = rows[0], {}
        for r in rows[1:]:
            if len(r) == len(header) and r[0].isdigit() and int(r[0]) <= epoch:
                by_epoch[int(r[0])] = r
        self._write([header] + [by_epoch[e] for e in sorted(by_epoch)])

    def append(self, row: dict) -> None:
        rows = self._rows()
        if not rows:
            rows = [list(self.columns)]
        elif rows[0] != list(self.columns):  # written by another version (a resumed run): keep rows by name
            old = rows[0]
            rows = [list(self.columns)] + [[dict(zip(old, r)).get(c, "") for c in self.columns]
                                           for r in rows[1:] if len(r) == len(old)]
        rows.append([_fmt(row.get(c)) for c in self.columns])
        self._write(rows)


def read_results(path: Path) -> list[dict]:
    """results.csv as a list of dicts (strings)."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


class TrainLogger:
    """results.csv + TensorBoard + console, on the main process only (``enabled=False`` elsewhere)."""

    def __init__(self, run_root: Path, loss_names: list[str], *, quiet: bool = False, enabled: bool = True,
                 tensorboard: bool = True, loggers=("tensorboard",), params: dict | None = None):
        self.enabled = enabled
        self.quiet = quiet or not sys.stderr.isatty()
        self.csv = ResultsCSV(Path(run_root) / "results.csv", loss_names)
        self.loggers = None  # instseg.engine.loggers.LoggerSet: TensorBoard, MLflow, W&B
        self._step = 0
        if enabled:
            from instseg.engine.loggers import open_loggers

            self.loggers = open_loggers([n for n in loggers if tensorboard or n != "tensorboard"], run_root, params)

    def set_loss_names(self, loss_names: list[str]) -> None:
        """The model's loss terms (known after its first batch) fix the trailing results.csv columns."""
        self.csv.columns = results_columns(loss_names)

    def progress(self, iterable, total: int, desc: str):
        """A tqdm bar over ``iterable`` (a plain iterator when quiet)."""
        if not self.enabled or self.quiet:
            return iterable
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)

    def scalar(self, name: str, value: float, step: int) -> None:
        """One TensorBoard point (e.g. the loss of every iteration); nothing without a writer."""
        if self.enabled and self.loggers is not None:
            self.loggers.log_metrics({name: value}, step)

    def log_epoch(self, row: dict, step: int) -> None:
        if not self.enabled:
            return
        self.csv.append(row)
        self._step = step
        if self.loggers is not None:
            self.loggers.log_metrics({k: v for k, v in row.items() if k not in ("epoch", "epochs")}, step)
        self.echo(summary_line(row))

    def echo(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Training is over: final metrics to the loggers; MLflow/W&B stay open for ``finish_run``."""
        if self.loggers is not None:
            self.loggers.end_training(self._step)


def summary_line(row: dict) -> str:
    """One line per epoch: 'epoch 3/50  loss 1.2340  lr 0.0049  segm mAP 0.1230  mAP50 0.3450  box mAP ...  (12.3 s)'."""

    def num(key: str, spec: str) -> str:
        v = row.get(key)
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    parts = [f"epoch {row['epoch']}/{row.get('epochs', '?')}", f"loss {num('train/loss', '.4f')}",
             f"lr {num('lr/pg0', '.3g')}"]
    if row.get("metrics/segm_mAP") is not None:
        parts += [f"segm mAP {num('metrics/segm_mAP', '.4f')}", f"mAP50 {num('metrics/segm_mAP50', '.4f')}",
                  f"box mAP {num('metrics/bbox_mAP', '.4f')}"]
    parts.append(f"({num('time', '.1f')} s)")
    return "  ".join(parts)


__all__ = ["FIXED_COLUMNS", "METRIC_COLUMNS", "results_columns", "fitness_of", "ResultsCSV", "read_results",
           "TrainLogger", "summary_line"]
