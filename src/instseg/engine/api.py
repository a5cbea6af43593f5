"""The library entry points behind ``instseg train`` / ``predict`` / ``eval --weights``: they pick the
backend from the registry and call it; the CLI commands are one call to these."""

from __future__ import annotations

import os
from pathlib import Path

from instseg.backends.base import PredictConfig, TrainResult
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

    ckpt = load_checkpoint(weights)
    backend = _backend_for(ckpt["architecture"])
    preds = backend.predict(Path(weights), list_images(source), cfg)
    return write_predictions(preds, out, ckpt["names"], overlays=overlays)


def evaluate_weights(weights: Path, data: Path, split: str, cfg: PredictConfig, out: Path | None = None):
    """Metrics of ``weights`` on ``split`` of ``data`` scored by instseg's evaluator."""
    from instseg.engine.predict import evaluate_weights as run

    metrics, _ = run(weights, data, split, cfg, out)
    return metrics


__all__ = ["train", "predict", "evaluate_weights"]
