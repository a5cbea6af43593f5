"""The backend of the architectures implemented inside instseg (SOLOv2, RTMDet-Ins): the model comes from
the registry's ``builder`` and is trained and run by instseg's engine. A new family only adds a builder and
flips its registry status."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def available() -> str | None:
    """Found without importing torch (``instseg list-models`` stays fast)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        return "torch and torchvision are required: pip install torch torchvision"
    return None


def train(cfg, run):
    """Train with instseg's engine (see instseg.engine.trainer.train)."""
    from instseg.engine.trainer import train as engine_train

    return engine_train(cfg, run)


def predict(weights: Path, images: Sequence[Path], cfg):
    from instseg.engine.predict import predict_images

    return predict_images(weights, images, cfg)


__all__ = ["available", "train", "predict"]
