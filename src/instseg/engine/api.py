"""The library entry points behind ``instseg train`` / ``predict`` / ``eval --weights``: they pick the
backend from the registry and call it; the CLI commands are one call to these."""

from __future__ import annotations

import os
from pathlib import Path

from instseg.contract import PredictConfig, TrainResult
from instseg.config import TrainConfig
from instseg.errors import BackendUnavailable, InstsegError


def _backend_for(architecture: str):
    from instseg.backends import load_backend
    from instseg.models.registry import get_architecture

    spec = get_architecture(architecture)
    if spec.status != "available":
        raise InstsegError(f"architecture {architecture!r} is not trainable yet (status={spec.status}); "
                           "see `instseg list-models`")
    backend = load_backend(spec.backend)
    why = backend.available()
    if why:
        raise BackendUnavailable(f"{architecture}: {why}")
    return backend


def train(cfg: TrainConfig, resume_epochs: int | None = None) -> TrainResult:
    """Train ``cfg``; with ``cfg.resume`` continue that checkpoint's run (``resume_epochs`` extends it)."""
    from instseg.engine.setup import make_run_dir, resume_config, with_defaults

    run = None
    if cfg.resume is not None:
        cfg, run = resume_config(cfg.resume, resume_epochs)
    cfg = with_defaults(cfg)
    backend = _backend_for(cfg.architecture)
    if run is None and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        run = make_run_dir(cfg)  # under torchrun the engine picks it on rank 0 and broadcasts it
    return backend.train(cfg, run)


def predict(weights: Path, source: Path, out: Path, cfg: PredictConfig, overlays: bool = True) -> Path:
    """Predict every image of ``source`` with ``weights``; write results JSON and overlays under ``out``."""
    from instseg.engine.checkpoint import load_checkpoint
    from instseg.engine.predict import list_images, write_predictions

    yolo = _ultralytics_weights(weights)
    if yolo is not None:
        backend, info = yolo
        names = info["names"]
    else:
        ckpt = load_checkpoint(weights)
        backend, names = _backend_for(ckpt["architecture"]), ckpt["names"]
    preds = backend.predict(Path(weights), list_images(source), cfg)
    return write_predictions(preds, out, names, overlays=overlays)


def evaluate_weights(weights: Path, data: Path, split: str, cfg: PredictConfig, out: Path | None = None):
    """Metrics of ``weights`` on ``split`` of ``data`` scored by instseg's evaluator."""
    from instseg.engine.predict import evaluate_weights as run

    yolo = _ultralytics_weights(weights)
    if yolo is not None:
        return _evaluate_ultralytics(yolo[0], weights, data, split, cfg, out)
    metrics, _ = run(weights, data, split, cfg, out)
    return metrics


def _ultralytics_weights(weights: Path):
    """(backend module, description) when ``weights`` is an Ultralytics checkpoint (the best.pt of a yolo
    run folder), else None. The file is recognised without unpickling it or importing Ultralytics."""
    from instseg.backends import load_backend

    module = load_backend("ultralytics")
    if not module.is_ultralytics_checkpoint(weights):
        return None
    why = module.available()
    if why:
        raise BackendUnavailable(f"{weights} is an Ultralytics checkpoint; {why}")
    return module, module.describe_weights(weights)


def _evaluate_ultralytics(module, weights: Path, data: Path, split: str, cfg: PredictConfig, out: Path | None):
    import tempfile

    from instseg.engine.setup import load_records
    from instseg.evaluation import Metrics

    info = module.describe_weights(weights)
    records = load_records(Path(data), split)
    if not records:
        from instseg.errors import DatasetError

        raise DatasetError(f"{data}: the {split} split has no usable images")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(out) if out is not None else Path(tmp) / "results.json"
        return Metrics.from_dict(module.evaluate_split(Path(weights), records, info["names"], cfg, target))


def dry_run(cfg: TrainConfig) -> None:
    """Print the resolved configuration (registry defaults filled in) and, for an architecture trained by
    another framework, the arguments instseg would pass to it; train nothing."""
    import yaml

    from instseg.config import to_dict
    from instseg.engine.setup import with_defaults
    from instseg.models.registry import get_architecture

    if cfg.resume is None:
        cfg = with_defaults(cfg)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
    if cfg.resume is None and get_architecture(cfg.architecture).backend == "ultralytics":
        from instseg.backends.ultralytics_args import resolve_ultralytics_args

        print("# Ultralytics model.train arguments")
        print(yaml.safe_dump(resolve_ultralytics_args(cfg), sort_keys=False), end="")


__all__ = ["train", "predict", "evaluate_weights", "dry_run"]
