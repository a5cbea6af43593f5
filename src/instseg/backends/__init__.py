"""Backends: one module per framework. Frameworks are imported inside the backend module only.

``BACKENDS`` maps a backend name to the dotted path of its module; ``load_backend(name)`` imports it.
Each backend module exposes ``available() -> str | None`` (None, or why not plus the install command),
``train(cfg, run) -> TrainResult`` and ``predict(weights, images, cfg) -> list[ImagePrediction]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

BACKENDS: dict[str, str] = {
    "native": "instseg.backends.native",
    "torchvision": "instseg.backends.torchvision",
    "ultralytics": "instseg.backends.ultralytics",
    "detectron2": "instseg.backends.detectron2",
}


def load_backend(name: str) -> ModuleType:
    try:
        path = BACKENDS[name]
    except KeyError as e:
        raise KeyError(f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}") from e
    return importlib.import_module(path)
