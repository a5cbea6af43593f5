"""The library entry points behind ``instseg train`` / ``predict`` / ``eval --weights`` (and ``compare``,
``tune``, ``export``): they ask the registry which backend trains an architecture and each backend's
``owns()`` which one reads a weights file, then call the backend object. No backend is named here.

This module sits above ``backends/`` (which sit above ``engine/``), so the engine never imports a backend.
"""

from __future__ import annotations

import os
from pathlib import Path

from instseg.contract import PredictConfig, TrainResult
from instseg.config import TrainConfig


def train(cfg: TrainConfig, resume_epochs: int | None = None, force: bool = False, callbacks=None) -> TrainResult:
    """Train ``cfg``; with ``cfg.resume`` continue that checkpoint's run (``resume_epochs`` extends it where
    the backend allows; ``force`` continues even though the dataset changed since the checkpoint).
    ``callbacks``: ``fn(epoch: int, metrics: dict)`` called after each epoch's validation on the main rank
    (``segm_mAP``, ``bbox_mAP``, ... of that epoch; how ``tune`` reports)."""
    from instseg.backends import backend_for_architecture, backend_for_weights
    from instseg.engine.setup import dataset_names, make_run_dir, run_project, with_defaults
    from instseg.rundir import missing_folders, remove_failed_start

    run = None
    if cfg.resume is not None:
        owner = backend_for_weights(Path(cfg.resume), PredictConfig(architecture=None))
        cfg, run = owner.resume_config(Path(cfg.resume), resume_epochs, force=force)
    cfg = with_defaults(cfg)
    backend = backend_for_architecture(cfg.architecture)
    created: list[Path] = []  # the folders this start makes (removed again if it fails before any epoch)
    if run is None and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        dataset_names(cfg.data)  # a missing or unreadable data.yaml stops here, before any folder is made
        project = run_project(cfg)
        parents = missing_folders(project)
        reused = cfg.exist_ok and (project / cfg.name).exists()
        run = make_run_dir(cfg)  # under torchrun the engine picks it on rank 0 and broadcasts it
        created = [] if reused else [run.root, *parents]
    try:
        return backend.train(cfg, run, callbacks=callbacks) if callbacks else backend.train(cfg, run)
    except BaseException:
        if created:  # a start that failed leaves no empty run folder behind (a resumed or reused one stays)
            from instseg.engine.loggers import close_run

            close_run(run.root)
            remove_failed_start(run, created)
        raise


def describe(weights: Path, cfg: PredictConfig | None = None):
    """(backend, WeightsInfo) of any checkpoint a backend owns; ``cfg`` supplies -a/-m/names it lacks."""
    from instseg.backends import backend_for_weights

    cfg = cfg or PredictConfig()
    backend = backend_for_weights(Path(weights), cfg)
    return backend, backend.describe(Path(weights), cfg)


def with_names(cfg: PredictConfig, data: Path | None) -> PredictConfig:
    """``cfg`` with the class names of ``data`` (a data.yaml) when it names none itself."""
    from dataclasses import replace

    if data is None or cfg.names:
        return cfg
    from instseg.data.yaml_config import load_data_yaml

    return replace(cfg, names=list(load_data_yaml(Path(data)).names))


def predict(weights: Path, source: Path, out: Path, cfg: PredictConfig, overlays: bool = True) -> Path:
    """Predict every image of ``source`` with ``weights``; write results JSON and overlays under ``out``."""
    from instseg.engine.predict import list_images, write_predictions

    backend, info = describe(weights, cfg)
    preds = backend.predict(Path(weights), list_images(source), cfg)
    return write_predictions(preds, out, info.names, overlays=overlays)


def evaluate_weights(weights: Path, data: Path, split: str, cfg: PredictConfig, out: Path | None = None):
    """Metrics of ``weights`` on ``split`` of ``data`` scored by instseg's evaluator."""
    from instseg.engine.setup import load_records
    from instseg.errors import DatasetError
    from instseg.evaluation import Metrics

    cfg = with_names(cfg, data)
    backend, info = describe(weights, cfg)
    records = load_records(Path(data), split)
    if not records:
        raise DatasetError(f"{data}: the {split} split has no usable images")
    data_names = cfg.names or []
    if info.names and data_names and len(info.names) != len(data_names):
        from instseg.errors import WeightsError

        raise WeightsError(f"{weights}: predicts {len(info.names)} classes, {data} names {len(data_names)}; "
                           "evaluate it on the dataset it was trained for")
    return Metrics.from_dict(backend.evaluate(Path(weights), records, cfg, out))


def dry_run(cfg: TrainConfig) -> None:
    """Print the resolved configuration (registry defaults filled in) and the arguments the backend would
    pass to its framework; train nothing."""
    import yaml

    from instseg.backends import get_backend
    from instseg.config import to_dict
    from instseg.engine.setup import with_defaults
    from instseg.models.registry import get_architecture

    if cfg.resume is None:
        cfg = with_defaults(cfg)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
    if cfg.resume is None:
        arch = get_architecture(cfg.architecture)
        backend = get_backend(arch.backend)
        from instseg.backends.engine_trained import EngineTrainedBackend

        if isinstance(backend, EngineTrainedBackend):
            print("\n".join(_schedule_comment(cfg, arch.default_schedule)))
        args = backend.resolved_args(cfg)
        if args:
            print(f"# {backend.name}: framework train arguments")
            print(yaml.safe_dump(args, sort_keys=False), end="")


def _schedule_comment(cfg: TrainConfig, default_recipe: str) -> list[str]:
    """The schedule instseg's engine would run, as YAML comment lines (the output above stays one YAML
    document): recipe, optimizer, lr0, warmup... resolved on the dataset's train split."""
    import dataclasses
    import math

    import yaml

    from instseg.engine.schedule import resolve_schedule
    from instseg.engine.setup import dataset_names, load_records
    from instseg.errors import InstsegError

    try:
        names = dataset_names(cfg.data)
        n = len(load_records(cfg.data, "train", log=lambda *a: None))
    except InstsegError as e:
        return [f"# schedule: resolved when the dataset can be read ({str(e).splitlines()[0]})"]
    if n == 0:
        return ["# schedule: the train split has no images"]
    s = resolve_schedule(cfg.schedule, architecture=cfg.architecture, default_recipe=default_recipe,
                         epochs=cfg.epochs, nb=math.ceil(n / cfg.batch), batch=cfg.batch, n_train=n, nc=len(names),
                         close_mosaic=cfg.augment.close_mosaic, ema=cfg.ema)
    head = (f"# schedule resolved for {n} train images, batch {cfg.batch}, {cfg.epochs} epochs"
            + (" (--time re-plans the epochs)" if cfg.time else "") + ", one process:")
    return [head] + ["#   " + line for line in yaml.safe_dump(dataclasses.asdict(s), sort_keys=False).splitlines()]


__all__ = ["train", "describe", "predict", "evaluate_weights", "dry_run", "with_names"]
