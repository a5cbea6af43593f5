"""``instseg tune``: Ray Tune's ``Tuner`` with Optuna's TPE (``OptunaSearch``, seeded) and the ASHA scheduler
on the per-epoch metric every trial reports, locally (``ray.init`` on this machine) or on a Ray cluster
(``address``); ``resume`` continues an interrupted experiment with ``Tuner.restore``.

The experiment folder ``<root>/<name>/`` holds ``search.yaml`` (what resume rebuilds the search from),
``ray/`` (Ray's experiment), one instseg run folder per trial, ``trials.csv`` and ``best.yaml``.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from instseg.config import ConfigError, TrainConfig, to_dict
from instseg.errors import BackendUnavailable, InstsegError
from instseg.io import atomic_write_text

INSTALL = "pip install 'instseg[tune]'  (ray[tune] and optuna)"
METRICS = {"segm_mAP": "max", "segm_mAP50": "max", "segm_mAP75": "max", "bbox_mAP": "max",
           "bbox_mAP50": "max", "fitness": "max", "train_loss": "min"}


@dataclass
class TuneOptions:
    """One search. ``base`` holds data, architecture, size, epochs, imgsz...: every trial = base + sample."""

    base: TrainConfig
    space: Path | None
    """The search-space YAML; None = the shipped one (instseg.tune.space.default_space)."""
    trials: int = 32
    """Trials sampled in all (Optuna TPE after its random start-up trials)."""
    metric: str = "segm_mAP"
    """What ASHA and the best trial are decided on; a key of METRICS."""
    mode: str | None = None
    """'max' or 'min'; None = the metric's natural direction."""
    seed: int = 0
    """TPE's seed: the same seed samples the same settings."""
    grace_period: int = 1
    """ASHA: epochs every trial runs before it can be stopped."""
    reduction_factor: int = 2
    """ASHA: 1/reduction_factor of the trials go on at each rung."""
    cpus_per_trial: float = 1
    gpus_per_trial: float | None = None
    """None = 1 when the Ray cluster has GPUs, else 0."""
    max_concurrent: int | None = None
    """At most this many trials at once (None = as many as the resources allow)."""
    address: str | None = None
    """A Ray cluster to join (``ray://head:10001`` or ``auto``); None = start one on this machine."""
    root: Path = Path("work_dirs/tune")
    name: str = "exp"
    resume: bool = False
    interrupt_after: int | None = None
    """Interrupt the experiment (as Ctrl+C does) once this many trials finished in this session: what
    ``resume`` continues. For tests and time-boxed sessions."""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"--metric {self.metric!r}; valid: {', '.join(METRICS)}")
        self.mode = self.mode or METRICS[self.metric]
        if self.mode not in ("max", "min"):
            raise ConfigError(f"--mode {self.mode!r}; valid: max, min")
        if self.trials < 1:
            raise ConfigError(f"--trials {self.trials} must be >= 1")


def _require_ray() -> None:
    import importlib.util

    missing = [m for m in ("ray", "optuna") if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailable(f"instseg tune needs {' and '.join(missing)}: {INSTALL}")


def experiment_dir(opts: TuneOptions) -> Path:
    return (Path(opts.root) / opts.name).resolve()


def _search_dict(opts: TuneOptions, dists, exp: Path, gpus: float) -> dict:
    from instseg.tune.space import default_space

    base = to_dict(opts.base)
    base["data"] = str(Path(opts.base.data).resolve()) if opts.base.data else None  # trials run elsewhere
    return {"base": base, "dists": [[d.key, d.kind, list(d.args)] for d in dists], "experiment": str(exp),
            "metric": opts.metric, "mode": opts.mode, "epochs": opts.base.epochs, "trials": opts.trials,
            "seed": opts.seed, "gpus_per_trial": gpus, "cpus_per_trial": opts.cpus_per_trial,
            "space_file": str(Path(opts.space or default_space()).resolve())}


def _init_ray(opts: TuneOptions) -> bool:
    """Connect to (or start) Ray; True when this call started it (and so shuts it down)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    if opts.address:
        ray.init(address=opts.address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
    return True


class _InterruptAfter:
    """A Tune callback that interrupts the run like Ctrl+C once ``n`` trials completed in this session (its
    pickled copy, restored by ``Tuner.restore``, is inert)."""

    def __new__(cls, n: int):
        from ray.tune import Callback

        class Interrupt(Callback):
            def __init__(self, n):
                self.n, self.done, self.pid = n, 0, os.getpid()

            def on_trial_complete(self, iteration, trials, trial, **info):
                self.done += 1
                if self.n is not None and self.done >= self.n and os.getpid() == self.pid:
                    self.n = None
                    os.kill(os.getpid(), signal.SIGINT)

            def __getstate__(self):
                return {"n": None, "done": 0, "pid": -1}

        return Interrupt(n)


def run_search(opts: TuneOptions, log=print) -> dict:
    """Run (or resume) the search; write trials.csv and best.yaml. Returns {experiment, rows, best, best_yaml}."""
    from instseg.tune.space import load_space, to_ray

    exp = experiment_dir(opts)
    search_file, ray_dir = exp / "search.yaml", exp / "ray"
    if opts.resume:
        if not search_file.is_file() or not ray_dir.is_dir():
            raise ConfigError(f"{exp}: no experiment to resume (no search.yaml / ray/); start it without --resume")
        search = yaml.safe_load(search_file.read_text())
    else:
        if search_file.exists():
            raise ConfigError(f"{exp}: an experiment of that name exists; --resume it or pick another --name")
        from instseg.data.yaml_config import load_data_yaml
        from instseg.engine.setup import check_data_yaml
        from instseg.models.registry import get_architecture

        check_data_yaml(opts.base.data)
        load_data_yaml(Path(opts.base.data))  # a bad dataset fails here, not in every trial
        try:
            spec = get_architecture(opts.base.architecture)
        except KeyError as e:
            raise ConfigError(f"-a {opts.base.architecture}: {e.args[0]}") from e
        if opts.base.model is not None and opts.base.model not in spec.sizes:
            raise ConfigError(f"-m {opts.base.model}: {opts.base.architecture} sizes are {', '.join(spec.sizes)}")
        dists = load_space(opts.space, opts.base)  # every bound through the schema, before Ray starts
    _require_ray()
    import ray
    from ray import tune

    started = _init_ray(opts)
    try:
        if not opts.resume:
            gpus = opts.gpus_per_trial
            if gpus is None:
                gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
            search = _search_dict(opts, dists, exp, gpus)
            exp.mkdir(parents=True, exist_ok=True)
            atomic_write_text(search_file, yaml.safe_dump(search, sort_keys=False))
        trainable = _trainable(search)
        callbacks = [_InterruptAfter(opts.interrupt_after)] if opts.interrupt_after else []
        if opts.resume:
            log(f"resuming {ray_dir}")
            tuner = tune.Tuner.restore(str(ray_dir), trainable=trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(trainable, param_space=to_ray(dists),
                               tune_config=_tune_config(search, opts),
                               run_config=tune.RunConfig(name="ray", storage_path=str(exp), verbose=1,
                                                         callbacks=callbacks))
        grid = tuner.fit()
    except (ray.exceptions.RayError, ray.tune.TuneError) as e:
        raise InstsegError(f"{exp}: the Ray Tune run failed: {e}") from e
    finally:
        if started:
            ray.shutdown()
    return write_outputs(grid, search, exp, log)


def _trainable(search: dict):
    from ray import tune

    from instseg.tune.trial import run_trial

    res = {"cpu": search["cpus_per_trial"], "gpu": search["gpus_per_trial"]}
    return tune.with_resources(tune.with_parameters(run_trial, search=search), res)


def _tune_config(search: dict, opts: TuneOptions):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    import optuna

    scheduler = ASHAScheduler(time_attr="epoch", max_t=search["epochs"], grace_period=opts.grace_period,
                              reduction_factor=opts.reduction_factor)
    searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=search["seed"]))
    return tune.TuneConfig(metric=search["metric"], mode=search["mode"], search_alg=searcher, scheduler=scheduler,
                           num_samples=search["trials"], max_concurrent_trials=opts.max_concurrent)


def _ray_status(ray_dir: Path) -> dict:
    """trial id -> Ray's status, from the experiment state Ray saved."""
    from ray.tune import ExperimentAnalysis

    try:
        return {t.trial_id: t.status for t in ExperimentAnalysis(str(ray_dir)).trials}
    except (OSError, ValueError) as e:  # no state written (nothing ran): every trial counts as finished
        import logging

        logging.getLogger(__name__).debug("no Ray experiment state in %s: %s", ray_dir, e)
        return {}


def write_outputs(grid, search: dict, exp: Path, log=print) -> dict:
    from instseg.tune.results import pick_best, trial_rows, write_best_yaml, write_trials_csv

    keys = [k for k, _kind, _args in search["dists"]]
    rows = trial_rows(grid, keys, search["epochs"], _ray_status(exp / "ray"))
    best = pick_best(rows, search["metric"], search["mode"])
    for row in rows:
        row["best"] = best is not None and row["trial"] == best["trial"]
    write_trials_csv(exp / "trials.csv", rows)
    best_yaml = write_best_yaml(exp / "best.yaml", search, best) if best else None
    if any(r["status"] in ("interrupted", "pending") for r in rows):
        log(f"unfinished trials: continue with `instseg tune --resume --project {exp.parent} --name {exp.name}`")
    log(f"trials: {exp / 'trials.csv'}" + (f"\nbest trial {best['trial']}: {search['metric']} "
                                             f"{best[search['metric']]:.4f} -> {best_yaml}" if best else ""))
    return {"experiment": exp, "rows": rows, "best": best, "best_yaml": best_yaml}


__all__ = ["TuneOptions", "run_search", "write_outputs", "experiment_dir", "METRICS", "INSTALL"]
