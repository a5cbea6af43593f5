"""Experiment loggers behind one small interface: TensorBoard, MLflow and Weights & Biases.

The engine calls a :class:`LoggerSet` (through :class:`instseg.engine.logger.TrainLogger`): the run's
config as parameters once, the results.csv columns of every epoch (and the loss of every iteration), the
final metrics of ``metrics.json`` when training ends; ``instseg train`` then calls :func:`finish_run`,
which adds the report folder as an artifact and closes the loggers. Runs that instseg's engine does not
train (Ultralytics) get the same record after the fact: :func:`finish_run` replays their results.csv.

* ``tensorboard``: event files in the run folder (the default, as before).
* ``mlflow``: the tracking URI of ``MLFLOW_TRACKING_URI``, else a local store in the working directory:
  ``sqlite:///mlflow.db`` with artifacts under ``./mlruns`` (MLflow 3 refuses its old plain-file store
  unless ``MLFLOW_ALLOW_FILE_STORE=true``; a ``file:`` URI works with that set); experiment
  ``MLFLOW_EXPERIMENT_NAME`` or ``instseg``.
* ``wandb``: project ``WANDB_PROJECT`` or ``instseg``; offline (files under the run folder, ``wandb sync``
  uploads them later) unless ``WANDB_MODE`` says otherwise or ``WANDB_API_KEY`` is set.

Each logger's run id is kept in ``<run>/loggers.json``, so a resumed run continues the same MLflow/W&B run.
Frameworks are imported when a logger is opened; a missing one is an error with the pip command.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from instseg.config import ConfigError
from instseg.errors import InstsegError

LOGGERS = ("tensorboard", "mlflow", "wandb")
INSTALL = {"mlflow": "pip install mlflow  (or pip install 'instseg[loggers]')",
           "wandb": "pip install wandb  (or pip install 'instseg[loggers]')"}


def parse_logger_names(values: Iterable[str]) -> list[str]:
    """``["tensorboard,mlflow", "wandb"]`` -> ``["tensorboard", "mlflow", "wandb"]``; ``none`` -> ``[]``."""
    out: list[str] = []
    for v in values:
        for name in str(v).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name == "none":
                return []
            if name not in LOGGERS:
                raise ConfigError(f"--logger {name!r}: unknown logger; valid: {', '.join(LOGGERS)} (or none)")
            if name not in out:
                out.append(name)
    return out


class Logger(Protocol):
    name: str

    def log_params(self, params: Mapping[str, object]) -> None: ...
    def log_metrics(self, values: Mapping[str, float], step: int) -> None: ...
    def log_artifacts(self, folder: Path, name: str) -> None: ...
    def close(self) -> None: ...


def _flat(d: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{key}."))
        else:
            out[key] = v
    return out


def numeric(values: Mapping[str, object]) -> dict[str, float]:
    """The entries that are finite numbers (bools and NaN dropped; numeric strings of results.csv kept)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, bool):
            continue
        try:
            f = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[k] = f
    return out


class TensorBoardLogger:
    name = "tensorboard"

    def __init__(self, run_root: Path, run_id: str | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_root))
        self.run_id = None

    def log_params(self, params):
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in _flat(params).items()))

    def log_metrics(self, values, step):
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def log_artifacts(self, folder, name):  # TensorBoard has no artifacts: the report sits beside the events
        pass

    def close(self):
        self.writer.close()


def _mlflow_key(k: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in k)


class MLflowLogger:
    name = "mlflow"

    def __init__(self, run_root: Path, run_id: str | None = None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise InstsegError(f"--logger mlflow: mlflow is not installed; {INSTALL['mlflow']}") from e
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"
        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        if run_id is None:
            exp_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "instseg")
            exp = self.client.get_experiment_by_name(exp_name)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(exp_name)
            run_id = self.client.create_run(exp_id, run_name=f"{run_root.parent.name}/{run_root.name}",
                                            tags={"instseg.run_dir": str(run_root.resolve())}).info.run_id
        self.run_id = run_id

    def log_params(self, params):
        from mlflow.entities import Param

        flat = [Param(_mlflow_key(k), str(v)[:6000]) for k, v in _flat(params).items()]
        for i in range(0, len(flat), 100):
            self.client.log_batch(self.run_id, params=flat[i:i + 100])

    def log_metrics(self, values, step):
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(_mlflow_key(k), v, now, step) for k, v in values.items()])

    def log_artifacts(self, folder, name):
        self.client.log_artifacts(self.run_id, str(folder), artifact_path=name)

    def close(self):
        self.client.set_terminated(self.run_id)


class WandbLogger:
    name = "wandb"

    def __init__(self, run_root: Path, run_id: str | None = None):
        try:
            import wandb
        except ImportError as e:
            raise InstsegError(f"--logger wandb: wandb is not installed; {INSTALL['wandb']}") from e
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "instseg"), dir=str(run_root), mode=mode,
                              name=f"{run_root.parent.name}/{run_root.name}", id=run_id, resume="allow" if run_id else None,
                              reinit="create_new", settings=wandb.Settings(console="off", silent=True))
        self.run_id = self.run.id

    def log_params(self, params):
        self.run.config.update(_flat(params), allow_val_change=True)

    def log_metrics(self, values, step):
        self.run.log(dict(values), step=step)

    def log_artifacts(self, folder, name):
        art = self.wandb.Artifact(name=f"{name}-{self.run.id}", type="report")
        art.add_dir(str(folder))
        self.run.log_artifact(art)

    def close(self):
        self.run.finish()


KINDS = {"tensorboard": TensorBoardLogger, "mlflow": MLflowLogger, "wandb": WandbLogger}
_OPEN: dict[str, "LoggerSet"] = {}  # run folder -> loggers still open for finish_run


class LoggerSet:
    """Every logger of one run; a call reaches each of them."""

    def __init__(self, run_root: Path, loggers: list):
        self.run_root, self.loggers, self.closed = Path(run_root), loggers, False

    def log_params(self, params: Mapping[str, object]) -> None:
        for lg in self.loggers:
            lg.log_params(params)

    def log_metrics(self, values: Mapping[str, object], step: int) -> None:
        nums = numeric(values)
        if nums:
            for lg in self.loggers:
                lg.log_metrics(nums, step)

    def log_final(self, step: int | None = None) -> dict[str, float]:
        """The numbers of metrics.json as ``final/<key>`` (nothing when there is none)."""
        path = self.run_root / "metrics.json"
        if not path.exists():
            return {}
        values = {f"final/{k}": v for k, v in numeric(_flat(json.loads(path.read_text()))).items()}
        self.log_metrics(values, step or 0)
        return values

    def end_training(self, step: int | None = None) -> None:
        """Training is over: final metrics logged, TensorBoard closed; MLflow/W&B wait for :func:`finish_run`."""
        self.log_final(step)
        for lg in [x for x in self.loggers if x.name == "tensorboard"]:
            lg.close()
        self.loggers = [x for x in self.loggers if x.name != "tensorboard"]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for lg in self.loggers:
                lg.close()
            _OPEN.pop(str(self.run_root.resolve()), None)


def _ids_path(run_root: Path) -> Path:
    return Path(run_root) / "loggers.json"


def open_loggers(names: Iterable[str], run_root: Path, params: Mapping[str, object] | None = None) -> LoggerSet:
    """Open the loggers ``names`` for the run folder ``run_root`` (resuming the runs in its loggers.json)."""
    from instseg.data.coco import write_json_atomic

    run_root = Path(run_root)
    ids = json.loads(_ids_path(run_root).read_text()) if _ids_path(run_root).exists() else {}
    loggers = [KINDS[n](run_root, ids.get(n)) for n in parse_logger_names(names)]
    new_ids = {lg.name: lg.run_id for lg in loggers if lg.run_id}
    if new_ids and new_ids != {k: ids.get(k) for k in new_ids}:
        write_json_atomic(_ids_path(run_root), {**ids, **new_ids})
    ls = LoggerSet(run_root, loggers)
    if params and not ids:
        ls.log_params(params)
    _OPEN[str(run_root.resolve())] = ls
    return ls


def finish_run(run_root: Path, names: Iterable[str], report_dir: Path | None = None) -> None:
    """End of a run: the report folder as an artifact, then every logger closed. A run whose loggers were
    not opened by this process (Ultralytics) is logged now from its config.yaml, results.csv, metrics.json."""
    run_root = Path(run_root)
    ls = _OPEN.get(str(run_root.resolve()))
    if ls is None:
        rest = [n for n in parse_logger_names(names) if n != "tensorboard"]  # YOLO: Ultralytics wrote TensorBoard
        if not rest or _ids_path(run_root).exists():
            return
        import yaml

        from instseg.engine.logger import read_results

        cfg = run_root / "config.yaml"
        ls = open_loggers(rest, run_root, yaml.safe_load(cfg.read_text()) if cfg.exists() else None)
        rows = read_results(run_root / "results.csv") if (run_root / "results.csv").exists() else []
        for row in rows:
            ls.log_metrics({k: v for k, v in row.items() if k != "epoch"}, int(float(row["epoch"])))
        ls.log_final(len(rows))
    try:
        if report_dir is not None and Path(report_dir).is_dir():
            for lg in ls.loggers:
                lg.log_artifacts(Path(report_dir), "report")
    finally:
        ls.close()


@contextlib.contextmanager
def scoped_setting(settings: dict, key: str, value: object):
    """Set ``settings[key]`` in memory for the ``with`` block, then restore it. ``dict.__setitem__`` goes
    around a settings class that saves on assignment (Ultralytics' SETTINGS), so the user's file is untouched."""
    missing = key not in settings
    old = settings.get(key)
    dict.__setitem__(settings, key, value)
    try:
        yield
    finally:
        if missing:
            dict.pop(settings, key, None)
        else:
            dict.__setitem__(settings, key, old)


def close_run(run_root: Path) -> None:
    """Close the loggers still open on ``run_root`` (a start that failed): TensorBoard's writer creates its
    events file on its first flush, so a folder removed under an open writer would come back."""
    ls = _OPEN.get(str(Path(run_root).resolve()))
    if ls is not None:
        ls.close()


@atexit.register
def _close_all() -> None:  # a library caller that never calls finish_run still gets its runs closed
    for ls in list(_OPEN.values()):
        ls.close()


__all__ = ["LOGGERS", "parse_logger_names", "Logger", "LoggerSet", "open_loggers", "finish_run", "close_run", "numeric",
           "TensorBoardLogger", "MLflowLogger", "WandbLogger", "scoped_setting"]
