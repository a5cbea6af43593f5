"""``build_model``: the nn.Module of one architecture and size, from the registry's ``builder`` string."""

from __future__ import annotations

import importlib

from instseg.errors import InstsegError
from instseg.models.registry import get_architecture, get_size


def import_builder(spec: str):
    """The function named by ``"package.module:function"``."""
    module_name, _, fn_name = spec.partition(":")
    if not module_name or not fn_name:
        raise ValueError(f"builder {spec!r} must look like 'package.module:function'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, fn_name)
    except AttributeError as e:
        raise ValueError(f"builder {spec!r}: {module_name} has no function {fn_name!r}") from e


def build_model(architecture: str, size: str, num_classes: int, **kw):
    """Build ``architecture``/``size`` for ``num_classes`` classes; ``kw`` goes to the family builder
    (the engine passes ``imgsz``, ``pretrained`` and ``freeze``)."""
    spec = get_architecture(architecture)
    get_size(architecture, size)
    if spec.status != "available" or not spec.builder:
        raise InstsegError(f"architecture {architecture!r} is listed but not trainable yet (status={spec.status}); "
                           "see `instseg list-models`")
    model = import_builder(spec.builder)(size, num_classes, **kw)
    for attr in ("forward_train", "predict", "num_classes"):
        if not hasattr(model, attr):
            raise TypeError(f"{spec.builder} returned {type(model).__name__} without {attr!r} (the model contract)")
    return model


__all__ = ["build_model", "import_builder"]
