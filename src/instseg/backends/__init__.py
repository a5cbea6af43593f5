"""Backends: one module per framework, each exporting one object ``BACKEND`` that implements
:class:`instseg.contract.Backend`. Frameworks are imported inside the backend's methods only.

``BACKENDS`` maps a backend name to its module; the registry (``instseg.models.registry``) names the backend
of each architecture. Adding a backend = one module here + one line below + its registry rows.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from instseg.contract import Backend, PredictConfig
from instseg.config import ConfigError
from instseg.errors import BackendUnavailable, InstsegError, WeightsError

BACKENDS: dict[str, str] = {
    "native": "instseg.backends.native",
    "torchvision": "instseg.backends.torchvision",
    "ultralytics": "instseg.backends.ultralytics",
    "onnx": "instseg.backends.onnx",
    "detectron2": "instseg.backends.detectron2",
}


def get_backend(name: str) -> Backend:
    """The backend object called ``name``; ConfigError listing the valid names when there is none."""
    try:
        path = BACKENDS[name]
    except KeyError as e:
        raise ConfigError(f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}") from e
    return importlib.import_module(path).BACKEND


def backend_status(name: str) -> str | None:
    """None when backend ``name`` can be used, else why not (with the install command)."""
    if name not in BACKENDS:
        return f"backend {name!r} is not written yet"
    try:
        backend = get_backend(name)
    except ImportError as e:  # the backend module itself is missing or broken
        return f"backend module failed to import: {e}"
    return backend.available()


def backend_for_architecture(architecture: str) -> Backend:
    """The usable backend that trains ``architecture`` (ConfigError / BackendUnavailable naming the fix)."""
    from instseg.models.registry import get_architecture

    spec = get_architecture(architecture)
    if spec.status != "available":
        raise InstsegError(f"architecture {architecture!r} is not trainable yet (status={spec.status}); "
                           "see `instseg list-models`")
    backend = get_backend(spec.backend)
    why = backend.available()
    if why:
        raise BackendUnavailable(f"{architecture}: {why}")
    return backend


def backend_for_weights(weights: Path, cfg: PredictConfig | None = None) -> Backend:
    """The backend whose ``owns()`` recognises ``weights`` (read without unpickling). A file no backend owns,
    or one several claim, gets a WeightsError that names the flags to add."""
    weights = Path(weights)
    if not weights.is_file():
        raise WeightsError(f"{weights}: checkpoint not found (pass the path of a .pt/.pth/.onnx weights file)")
    owners = []
    for name in BACKENDS:
        try:
            backend = get_backend(name)
        except ImportError:
            continue
        if backend.owns(weights):
            owners.append(backend)
    if cfg is not None and cfg.architecture and len(owners) != 1:
        from instseg.models.registry import get_architecture

        wanted = get_architecture(cfg.architecture).backend
        owners = [b for b in owners if b.name == wanted] or ([get_backend(wanted)] if not owners else owners)
    if not owners:
        raise WeightsError(
            f"{weights}: not a checkpoint instseg recognises (instseg .pt, MMDetection .pth of rtmdet-ins or "
            "solov2, torchvision Mask R-CNN state dict, Ultralytics YOLO-seg .pt); if it is one of these, say "
            "which with --architecture/-a and --model/-m")
    if len(owners) > 1:
        raise WeightsError(f"{weights}: could be read by several backends ({', '.join(b.name for b in owners)}); "
                           "say which with --architecture/-a (and --model/-m)")
    backend = owners[0]
    why = backend.available()
    if why:
        raise BackendUnavailable(f"{weights}: {why}")
    return backend


__all__ = ["BACKENDS", "get_backend", "backend_status", "backend_for_architecture", "backend_for_weights"]
