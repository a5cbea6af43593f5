"""The torchvision backend: Mask R-CNN (``instseg.models.maskrcnn``) trained and run by instseg's engine.

torchvision is imported only when a model is built, so ``instseg list-models`` does not import torch.
"""

from __future__ import annotations

# The same engine trains and runs every model that implements the model contract.
from instseg.backends.native import predict, train


def available() -> str | None:
    """Found without importing torch (``instseg list-models`` stays fast)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        return "torchvision is not installed: pip install torchvision"
    return None

__all__ = ["available", "train", "predict"]
