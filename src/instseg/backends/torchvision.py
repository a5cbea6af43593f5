"""The torchvision backend: Mask R-CNN (``instseg.models.maskrcnn``) trained and run by instseg's engine.

torchvision is imported only when a model is built, so ``instseg list-models`` does not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def available() -> str | None:
    """Found without importing torch (``instseg list-models`` stays fast)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        return "torchvision is not installed: pip install torchvision"
    return None


def train(cfg, run):
    """Train with instseg's engine (see instseg.engine.trainer.train)."""
    from instseg.engine.trainer import train as engine_train

    return engine_train(cfg, run)


def predict(weights: Path, images: Sequence[Path], cfg):
    from instseg.engine.predict import predict_images

    return predict_images(weights, images, cfg)


__all__ = ["available", "train", "predict"]
