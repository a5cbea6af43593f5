"""The architecture registry, read from ``configs/models/<architecture>.yaml`` (the only place sizes live).

``ARCHITECTURES[name]`` says which backend trains it, which sizes exist and their defaults. The YAML files are
read on first use (``ARCHITECTURES``, ``get_architecture``), not at import. Model code is imported only when a
model is built (``instseg.models.build``), so ``instseg list-models`` and ``instseg --help`` stay fast.

A model file holds ``name`` (= the file name), ``backend`` (a backend's name), ``summary``, ``builder``
(``"module:function"``; absent for a framework that builds its own models), ``default_size``,
``mask_stride``, optionally ``status`` (``available`` | ``planned``), ``default_schedule`` (a recipe name,
default ``ultralytics``), ``train_defaults`` (settings, as KEY=VALUE names, that the architecture fills
where the run leaves them unset) and ``sizes``: ``name -> {description, params_m, default_batch,
default_imgsz, ...}``; any other key of a size (e.g. a family's ``layout``) lands in ``SizeSpec.extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from instseg.config import ConfigError, configs_dir, field_default, read_yaml, resolve_key, unknown_choice


@dataclass(frozen=True)
class SizeSpec:
    """One size of one architecture."""

    name: str
    description: str = ""
    params_m: float | None = None  # parameters in millions (with 80 classes unless noted)
    default_batch: int = 8
    default_imgsz: int = 640
    extra: dict = field(default_factory=dict)  # architecture-specific settings (e.g. ``layout``)


@dataclass(frozen=True)
class ArchitectureSpec:
    name: str
    backend: str  # a backend's name (instseg.backends)
    sizes: dict[str, SizeSpec]
    default_size: str
    default_schedule: str = "ultralytics"
    mask_stride: int = 4  # stride of the target masks the training Dataset produces
    status: str = "available"  # "available" or "planned" (listed but not trainable yet)
    summary: str = ""
    builder: str = ""  # "module:function" building the nn.Module: fn(size: str, num_classes: int, **kw)
    train_defaults: dict = field(default_factory=dict)  # setting -> value where the run leaves it unset
    source: str = ""  # the YAML file it was read from


_ARCH_KEYS = {"name", "backend", "summary", "builder", "default_size", "default_schedule", "mask_stride",
              "status", "train_defaults", "sizes", "scale_ranges"}  # scale_ranges: YAML anchors only
_SIZE_KEYS = {"description", "params_m", "default_batch", "default_imgsz"}


def models_dir() -> Path:
    return configs_dir() / "models"


def parse_architecture(path: Path) -> ArchitectureSpec:
    """One ``configs/models/*.yaml``; a wrong key or value is a ConfigError naming the file."""
    from instseg.config import recipe_names

    d = read_yaml(path, "model file")
    unknown = sorted(set(d) - _ARCH_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; valid: {', '.join(sorted(_ARCH_KEYS))}")
    for key in ("backend", "default_size", "sizes"):
        if key not in d:
            raise ConfigError(f"{path}: missing key {key!r}")
    name = d.get("name", path.stem)
    if name != path.stem:
        raise ConfigError(f"{path}: name {name!r} differs from the file name; rename one")
    if not isinstance(d["sizes"], dict) or not d["sizes"]:
        raise ConfigError(f"{path}: 'sizes' must map size names to their settings")
    sizes = {}
    for size, s in d["sizes"].items():
        s = dict(s or {})
        extra = {k: s.pop(k) for k in list(s) if k not in _SIZE_KEYS}
        sizes[str(size)] = SizeSpec(str(size), extra=extra, **s)
    if d["default_size"] not in sizes:
        raise ConfigError(f"{path}: default_size {d['default_size']!r} is not one of its sizes ({', '.join(sizes)})")
    schedule = d.get("default_schedule", "ultralytics")
    if schedule not in recipe_names():
        raise unknown_choice("recipe", schedule, recipe_names(), f"{path}: default_schedule: ")
    defaults = dict(d.get("train_defaults") or {})
    for key in defaults:
        section, fname = resolve_key(key, f"{path}: train_defaults.{key}")
        if field_default(section, fname) is not None:
            raise ConfigError(f"{path}: train_defaults.{key}: only settings whose default is unset (null) can "
                              f"have an architecture default")
    return ArchitectureSpec(
        name=name, backend=str(d["backend"]), sizes=sizes, default_size=str(d["default_size"]),
        default_schedule=schedule, mask_stride=int(d.get("mask_stride", 4)),
        status=str(d.get("status", "available")), summary=str(d.get("summary", "")),
        builder=str(d.get("builder") or ""), train_defaults=defaults, source=str(path))


_LOADED: dict[str, ArchitectureSpec] | None = None


def _registry() -> dict[str, ArchitectureSpec]:
    global _LOADED
    if _LOADED is None:
        files = sorted(models_dir().glob("*.yaml"))
        if not files:
            raise ConfigError(f"{models_dir()}: no model files; the instseg install is incomplete (reinstall it)")
        _LOADED = {p.stem: parse_architecture(p) for p in files}
    return _LOADED


def __getattr__(name: str):
    if name == "ARCHITECTURES":  # the same dict every time: tests may register an architecture in it
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_architecture(name: str) -> ArchitectureSpec:
    """The spec of ``name``; an unknown name raises ConfigError (also a KeyError) naming the valid ones."""
    archs = _registry()
    if name not in archs:
        raise unknown_choice("architecture", name, sorted(archs), "")
    return archs[name]


def get_size(arch: str, size: str) -> SizeSpec:
    spec = get_architecture(arch)
    if size not in spec.sizes:
        err = unknown_choice("size", size, list(spec.sizes), "")
        raise type(err)(str(err).replace(f"size {size!r}", f"size {size!r} for {arch}", 1))
    return spec.sizes[size]


__all__ = ["ARCHITECTURES", "ArchitectureSpec", "SizeSpec", "get_architecture", "get_size", "parse_architecture",
           "models_dir"]
