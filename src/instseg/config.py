"""Typed configuration: one dataclass per concern, a docstring per field, checks in ``__post_init__``.

One :class:`TrainConfig` crosses every layer (CLI -> engine -> backend); nothing below the CLI sees a
``Namespace`` or a dict of string keys. ``save_yaml``/``load_yaml`` round-trip it for ``config.yaml`` in the
run folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from instseg.errors import InstsegError
from instseg.io import atomic_write_text


class ConfigError(InstsegError, ValueError):
    """A configuration value is invalid; the message names the option and the valid range."""


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")


@dataclass
class AugmentConfig:
    """Training augmentations. Names and defaults are Ultralytics' (``ultralytics/cfg/default.yaml``)."""

    recipe: str = "ultralytics"
    """'ultralytics' (letterbox, mosaic, affine, HSV, flips...) or 'torchvision' (photometric distort,
    resize to a fixed size, horizontal flip) or 'none' (letterbox only)."""
    hsv_h: float = 0.015
    """Hue gain, fraction of the hue circle."""
    hsv_s: float = 0.7
    """Saturation gain (fraction)."""
    hsv_v: float = 0.4
    """Value (brightness) gain (fraction)."""
    degrees: float = 0.0
    """Rotation range, +/- degrees."""
    translate: float = 0.1
    """Translation range, +/- fraction of the image size."""
    scale: float = 0.5
    """Scale gain range, +/- fraction."""
    shear: float = 0.0
    """Shear range, +/- degrees."""
    perspective: float = 0.0
    """Perspective factor, 0 to 0.001."""
    flipud: float = 0.0
    """Probability of a vertical flip."""
    fliplr: float = 0.5
    """Probability of a horizontal flip."""
    mosaic: float = 1.0
    """Probability of a 4-image mosaic."""
    mixup: float = 0.0
    """Probability of mixup with a second (mosaic) sample."""
    copy_paste: float = 0.0
    """Copy-paste (Ultralytics' flip mode): the fraction of instances pasted as flipped copies where they
    overlap existing ones < 30 %."""
    close_mosaic: int = 10
    """Turn mosaic (and mixup) off for the last N epochs."""
    brightness: float = 0.2
    """Random brightness range, +/- fraction."""
    contrast: float = 0.2
    """Random contrast range, +/- fraction."""
    brightness_contrast_p: float = 0.0
    """Probability of the random brightness/contrast step (0 = off, Ultralytics has none)."""
    min_area: float = 4.0
    """Instances whose mask area after augmentation is below this many output pixels are removed."""

    def __post_init__(self) -> None:
        if self.recipe not in ("ultralytics", "torchvision", "none"):
            raise ConfigError(f"augment.recipe={self.recipe!r}; valid: ultralytics, torchvision, none")
        for name in ("hsv_h", "hsv_s", "hsv_v", "flipud", "fliplr", "mosaic", "mixup", "copy_paste",
                     "brightness_contrast_p", "translate", "brightness", "contrast"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        _check_range("perspective", self.perspective, 0.0, 0.001)
        _check_range("degrees", self.degrees, 0.0, 180.0)
        _check_range("shear", self.shear, 0.0, 90.0)
        _check_range("scale", self.scale, 0.0, 0.95)
        if self.close_mosaic < 0:
            raise ConfigError(f"close_mosaic={self.close_mosaic} must be >= 0")


@dataclass
class ScheduleConfig:
    """Optimizer and learning-rate schedule. Names and defaults follow Ultralytics where it has them.

    ``None`` means "the recipe decides" (see ``instseg.engine.schedule``); an explicit value always wins.
    """

    recipe: str | None = None
    """'ultralytics', 'warmup-cosine', 'step' or 'upstream'; None = the architecture's default recipe."""
    optimizer: str | None = None
    """'auto', 'SGD', 'AdamW', 'Adam'; None = the recipe's choice."""
    lr0: float | None = None
    """Initial (peak) learning rate."""
    lrf: float | None = None
    """Final learning rate as a fraction of lr0."""
    momentum: float | None = None
    """SGD momentum / Adam beta1."""
    weight_decay: float | None = None
    """Weight decay (scaled by batch * accumulate / nbs in the ultralytics recipe)."""
    warmup_epochs: float | None = None
    """Warmup length in epochs (fractions allowed)."""
    warmup_momentum: float = 0.8
    """Momentum at the start of warmup."""
    warmup_bias_lr: float = 0.1
    """Bias learning rate at the start of warmup."""
    cos_lr: bool = False
    """Cosine instead of linear decay to lrf."""
    nbs: int = 64
    """Nominal batch size: gradients are accumulated to about this many images per step."""
    step_size: int = 10
    """'step' recipe: epochs between decays."""
    gamma: float = 0.1
    """'step' recipe: decay factor."""
    clip_grad: float | None = None
    """Max gradient norm (None = the recipe's choice; Ultralytics clips at 10)."""

    def __post_init__(self) -> None:
        valid = (None, "ultralytics", "warmup-cosine", "step", "upstream")
        if self.recipe not in valid:
            raise ConfigError(f"schedule={self.recipe!r}; valid: ultralytics, warmup-cosine, step, upstream")
        if self.optimizer is not None and self.optimizer not in ("auto", "SGD", "AdamW", "Adam"):
            raise ConfigError(f"optimizer={self.optimizer!r}; valid: auto, SGD, AdamW, Adam")
        if self.lr0 is not None and self.lr0 <= 0:
            raise ConfigError(f"lr0={self.lr0} must be > 0")
        if self.lrf is not None:
            _check_range("lrf", self.lrf, 0.0, 1.0)
        if self.nbs < 1:
            raise ConfigError(f"nbs={self.nbs} must be >= 1")


@dataclass
class TrainConfig:
    """Everything one training run needs. Saved as ``config.yaml`` in the run folder."""

    data: Path | None = None
    """Path to the dataset's data.yaml (or a COCO JSON)."""
    architecture: str = "maskrcnn"
    """A key of instseg.models.registry.ARCHITECTURES (see `instseg list-models`)."""
    model: str | None = None
    """The size, e.g. 'nano', 'tiny', 'n', 'r50-fpn'; None = the architecture's default size."""
    epochs: int = 100
    """Number of training epochs."""
    time: float | None = None
    """Wall-time budget in hours (overrides epochs, as Ultralytics' ``time``): after each epoch the epoch
    count is re-planned from the mean epoch time so the schedule ends within the budget; None = off."""
    batch: int | None = None
    """Images per batch (per GPU); None = the size's default."""
    imgsz: int | None = None
    """Training/validation image size (long side, letterboxed square); None = the size's default."""
    device: str = ""
    """'cpu', '0', '0,1'; '' = the first CUDA device if there is one, else cpu."""
    workers: int = 4
    """DataLoader worker processes per rank."""
    seed: int = 0
    """Global random seed."""
    deterministic: bool = False
    """Use deterministic algorithms (slower)."""
    amp: bool = True
    """Automatic mixed precision on CUDA (ignored on CPU)."""
    ema: bool | None = None
    """Model EMA; None = the recipe's choice (on for ultralytics and upstream RTMDet)."""
    cache: str | None = None
    """'ram' to keep decoded images in memory; None = read from disk every time."""
    project: Path | None = None
    """Runs root; None = work_dirs/<architecture>-<size>."""
    name: str = "exp"
    """Run folder name; an existing one gets a suffix (exp2, exp3...) unless exist_ok."""
    exist_ok: bool = False
    """Reuse the run folder if it exists."""
    pretrained: bool = False
    """Start from the upstream pretrained weights (COCO or ImageNet backbone)."""
    pretrained_backbone: bool = False
    """Start the backbone from its ImageNet weights (native families: torchvision ResNet for SOLOv2, the
    CSPNeXt weights of MMDetection for RTMDet-Ins)."""
    weights: Path | None = None
    """Start from this checkpoint file (instseg .pt, or the framework's own format)."""
    resume: Path | None = None
    """Continue the run of this last.pt exactly where it stopped (same run folder; ``epochs`` may extend it)."""
    freeze: int = 0
    """Freeze the first N backbone stages."""
    patience: int = 100
    """Early stopping: epochs without improvement of best_metric (0 = off)."""
    val_period: int = 1
    """Validate every N epochs (always after the last)."""
    best_metric: str = "segm_mAP"
    """'segm_mAP' (mask mAP50-95), 'segm_mAP50', 'bbox_mAP' or 'fitness' (0.1*mAP50 + 0.9*mAP50-95)."""
    val_conf: float = 0.001
    """Score threshold of the predictions scored during validation (COCO needs a low one)."""
    max_det: int = 100
    """Detections kept per image at validation and prediction."""
    quiet: bool = False
    """No progress bar (also the case without a TTY)."""
    dry_run: bool = False
    """Print the resolved configuration (and backend arguments) and exit."""
    loggers: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Experiment loggers: any of tensorboard, mlflow, wandb (instseg.engine.loggers); [] = none."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs} must be >= 1")
        if self.time is not None and not self.time > 0:
            raise ConfigError(f"time={self.time} must be > 0 hours (or unset)")
        if self.batch is not None and self.batch < 1:
            raise ConfigError(f"batch={self.batch} must be >= 1")
        if self.imgsz is not None and (self.imgsz < 32 or self.imgsz % 32):
            raise ConfigError(f"imgsz={self.imgsz} must be a multiple of 32 and >= 32")
        if self.best_metric not in ("segm_mAP", "segm_mAP50", "bbox_mAP", "fitness"):
            raise ConfigError(f"best_metric={self.best_metric!r}; valid: segm_mAP, segm_mAP50, bbox_mAP, fitness")
        if self.cache not in (None, "ram"):
            raise ConfigError(f"cache={self.cache!r}; valid: ram (or leave unset)")


def _override_targets() -> dict[str, tuple[str | None, str]]:
    """``key -> (section, field)`` for every settable field: TrainConfig's own (section None),
    ``augment.<f>`` and ``schedule.<f>``; a bare name maps too where it is unambiguous."""
    targets: dict[str, tuple[str | None, str]] = {}
    bare: dict[str, list[tuple[str | None, str]]] = {}
    for section, cls in ((None, TrainConfig), ("augment", AugmentConfig), ("schedule", ScheduleConfig)):
        for f in fields(cls):
            if section is None and f.name in ("augment", "schedule"):
                continue
            if section is not None:
                targets[f"{section}.{f.name}"] = (section, f.name)
            bare.setdefault(f.name, []).append((section, f.name))
    for name, where in bare.items():
        if len(where) == 1:
            targets[name] = where[0]
    return targets


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply Ultralytics-style ``key=value`` overrides (``hsv_h=0.02 mosaic=0 schedule.recipe=step``).

    Values are parsed as YAML scalars (``0.5``, ``true``, ``null``, ``ram``). Every override goes through the
    dataclasses' validation, so ``fliplr=1.5`` fails with a message naming ``fliplr``.
    """
    targets = _override_targets()
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {"augment": {}, "schedule": {}}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (e.g. mosaic=0.5)")
        if key not in targets:
            ambiguous = [k for k in targets if k.endswith(f".{key}")]
            hint = (f"say which: {', '.join(ambiguous)}" if ambiguous
                    else f"valid keys: {', '.join(sorted(k for k in targets if '.' not in k))}")
            raise ConfigError(f"unknown setting {key!r} in {item!r}; {hint}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: cannot parse the value ({e})") from e
        section, name = targets[key]
        (top if section is None else sections[section])[name] = Path(value) if (
            value is not None and section is None and "Path" in str(TrainConfig.__dataclass_fields__[name].type)
        ) else value
    try:
        aug = dataclasses.replace(cfg.augment, **sections["augment"])
        sched = dataclasses.replace(cfg.schedule, **sections["schedule"])
        return dataclasses.replace(cfg, **top, augment=aug, schedule=sched)
    except TypeError as e:  # a value of the wrong type that a check compared
        raise ConfigError(f"overrides {overrides}: {e}") from e


def to_dict(obj: Any) -> dict:
    """A dataclass (nested) as plain YAML-safe types (Paths become strings)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(obj)


def from_dict(cls: type, data: dict) -> Any:
    """Build dataclass ``cls`` from a dict; unknown keys are an error that names them and the valid ones."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {unknown}; valid: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        is_path = "Path" in str(f.type)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = from_dict(type(default), value)
        elif is_path:
            value = Path(value) if value is not None else None
        kwargs[name] = value
    return cls(**kwargs)


def save_yaml(obj: Any, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))


def load_yaml(cls: type, path: Path) -> Any:
    data = yaml.safe_load(Path(path).read_text()) or {}
    return from_dict(cls, data)


__all__ = ["AugmentConfig", "ScheduleConfig", "TrainConfig", "apply_overrides", "ConfigError", "to_dict", "from_dict", "save_yaml", "load_yaml", "field"]
