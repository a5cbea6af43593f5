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

from instseg.io import atomic_write_text


from instseg.presets import (ConfigError, UnknownChoiceError, configs_dir, did_you_mean, read_yaml,  # noqa: F401
                             recipe_files, recipe_names, unknown_choice)


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
    """A file name of configs/recipes/ ('ultralytics', 'warmup-cosine', 'step', 'upstream-solov2', ...) or
    'upstream' (the recipe published for the architecture); None = the architecture's default recipe
    ('ultralytics' for every architecture)."""
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
    """Max gradient norm (None = the architecture's or the recipe's choice; Ultralytics clips at 10)."""

    def __post_init__(self) -> None:
        if self.recipe is not None and self.recipe not in recipe_names():
            raise unknown_choice("schedule recipe", self.recipe, recipe_names(), "schedule: ")
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
    """An architecture: a file name of configs/models/ (see `instseg list-models`)."""
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
    compile: bool = False
    """torch.compile the backbone and neck in place (opt-in: the first iterations compile; checkpoints keep
    the plain keys)."""
    roi_batch: int | None = None
    """RoIs sampled per image for the box and mask heads of two-stage models (Mask R-CNN, torchvision and
    Detectron2); None = the model's own default (512)."""
    channels_last: bool | None = None
    """Channels-last memory format for the model and its batches; None = on for CPU training (measured
    0.73-0.88x the step time of the default format on this project's CPU machine), off on CUDA."""
    cpu_amp: bool = False
    """bfloat16 autocast for CPU training (0.36-0.57x the step time with channels_last on a CPU with AMX;
    slower without bf16 hardware; changes the numerics, hence opt-in)."""
    ema: bool | None = None
    """Model EMA; None = the recipe's choice (its `ema:`; on for ultralytics, warmup-cosine, upstream-rtmdet-ins)."""
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


ALIASES = {"lr": "lr0", "augment": "augment.recipe", "schedule": "schedule.recipe"}
"""Flag spellings that are not field names (``--lr``, ``--augment``, ``--schedule``)."""


def _sections() -> dict[str | None, type]:
    return {None: TrainConfig, "augment": AugmentConfig, "schedule": ScheduleConfig}


def _override_targets() -> dict[str, tuple[str | None, str]]:
    """``key -> (section, field)`` for every settable field: TrainConfig's own (section None),
    ``augment.<f>`` and ``schedule.<f>``; a bare name maps too where it is unambiguous."""
    targets: dict[str, tuple[str | None, str]] = {}
    bare: dict[str, list[tuple[str | None, str]]] = {}
    for section, cls in _sections().items():
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


def resolve_key(key: str, item: str | None = None) -> tuple[str | None, str]:
    """``(section, field)`` of a setting name (``mosaic``, ``schedule.gamma``, ``clip-grad``, ``lr``);
    an unknown or ambiguous name is a ConfigError naming the fix."""
    targets = _override_targets()
    key = key.strip().lstrip("-").replace("-", "_")
    key = ALIASES.get(key, key)
    if key in targets:
        return targets[key]
    shown = f" in {item!r}" if item and item != key else ""
    ambiguous = [k for k in targets if k.endswith(f".{key}")]
    if ambiguous:
        raise ConfigError(f"setting {key!r}{shown} is in several sections; say which: {', '.join(ambiguous)}")
    raise UnknownChoiceError(f"unknown setting {key!r}{shown}{did_you_mean(key, targets)} "
                             f"(`instseg train --help-settings` lists them all)")


def get_value(cfg: TrainConfig, key: str) -> Any:
    """The value of one setting of ``cfg`` (``mosaic``, ``schedule.clip_grad``, ``epochs``)."""
    section, name = resolve_key(key)
    return getattr(cfg if section is None else getattr(cfg, section), name)


def with_unset(cfg: TrainConfig, defaults: dict[str, Any]) -> TrainConfig:
    """``cfg`` with each of ``defaults`` (setting -> value) set where ``cfg`` leaves it unset (None)."""
    todo = {k: v for k, v in defaults.items() if get_value(cfg, k) is None}
    return apply_values(cfg, todo) if todo else cfg


def field_type(section: str | None, name: str) -> str:
    """The annotation of one field, as written (``'float | None'``)."""
    return str(_sections()[section].__dataclass_fields__[name].type)


def coerce(section: str | None, name: str, value: Any, shown: str | None = None) -> Any:
    """``value`` (parsed YAML or a typed flag) as the type of the field: Paths from strings, ints from
    integral floats, strings from numbers (``name=123``); a wrong type is a ConfigError naming the field."""
    t = field_type(section, name)
    key = f"{section}.{name}" if section else name
    shown = shown or f"{key}={value!r}"
    if value is None:
        if "None" in t:
            return None
        raise ConfigError(f"{shown}: {key} cannot be empty (null); give a {t.split()[0]}")
    base = t.split("|")[0].strip()
    if base == "Path":
        if isinstance(value, (str, Path)):
            return Path(value)
    elif base == "bool":
        if isinstance(value, bool):
            return value
    elif base == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-05 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif base == "str":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise ConfigError(f"{shown}: {key} takes a {base}, not {type(value).__name__} {value!r}")


def parse_value(raw: str, item: str) -> Any:
    """A KEY=VALUE value as a YAML scalar (``0.5``, ``true``, ``null``, ``ram``); empty = null."""
    if not raw.strip():
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"{item!r}: cannot parse the value ({str(e).splitlines()[0]})") from e


def apply_values(cfg: TrainConfig, values: dict[str, Any], shown: dict[str, str] | None = None) -> TrainConfig:
    """``cfg`` with ``{setting name: value}`` set (names as :func:`resolve_key` takes them; values coerced
    to the field types). Every value goes through the dataclasses' validation."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {"augment": {}, "schedule": {}}
    for key, value in values.items():
        item = (shown or {}).get(key)
        section, name = resolve_key(key, item)
        (top if section is None else sections[section])[name] = coerce(section, name, value, item)
    try:
        aug = dataclasses.replace(cfg.augment, **sections["augment"])
        sched = dataclasses.replace(cfg.schedule, **sections["schedule"])
        return dataclasses.replace(cfg, **top, augment=aug, schedule=sched)
    except TypeError as e:  # a value of the wrong type that a check compared
        raise ConfigError(f"settings {values}: {e}") from e


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply Ultralytics-style ``key=value`` overrides (``hsv_h=0.02 mosaic=0 schedule.recipe=step``).

    Values are parsed as YAML scalars (``0.5``, ``true``, ``null``, ``ram``). Every override goes through the
    dataclasses' validation, so ``fliplr=1.5`` fails with a message naming ``fliplr``. A later item wins.
    """
    values: dict[str, Any] = {}
    shown: dict[str, str] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{item!r} is not KEY=VALUE (e.g. mosaic=0.5); "
                              f"`instseg train --help-settings` lists the keys")
        key = key.strip()
        values.pop(key, None)
        values[key], shown[key] = parse_value(raw, item), item
    return apply_values(cfg, values, shown)


def field_default(section: str | None, name: str) -> Any:
    f = _sections()[section].__dataclass_fields__[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


# -------------------------------------------------------------------------------------------- YAML in/out
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


def from_dict(cls: type, data: dict, where: str = "", lines: dict[str, int] | None = None,
              prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a dict; unknown keys are an error that names them, the closest valid one
    and (with ``lines``, key path -> line) the line; values are coerced to the field types."""
    known = {f.name: f for f in fields(cls)}
    section = {TrainConfig: None, AugmentConfig: "augment", ScheduleConfig: "schedule"}.get(cls, "?")
    for key in data:
        if key not in known:
            line = (lines or {}).get(prefix + str(key))
            at = f"{where}:{line}: " if where and line else (f"{where}: " if where else "")
            raise UnknownChoiceError(f"{at}unknown {cls.__name__} key {prefix + str(key)!r}"
                                     f"{did_you_mean(key, known)}; valid: {', '.join(known)}")
    kwargs = {}
    for name, value in data.items():
        default = field_default(section, name) if section != "?" else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{where + ': ' if where else ''}{prefix + name} must be a mapping of "
                                  f"{type(default).__name__} keys, not {value!r}")
            value = from_dict(type(default), value, where, lines, prefix=f"{prefix}{name}.")
        elif section != "?":
            value = coerce(section, name, value, f"{where + ': ' if where else ''}{prefix + name}: {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def _key_lines(text: str) -> dict[str, int]:
    """``'key'`` / ``'section.key'`` -> 1-based line, for the messages about a config file."""
    out: dict[str, int] = {}
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return out

    def walk(n, prefix: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                out[prefix + str(k.value)] = k.start_mark.line + 1
                if not prefix:
                    walk(v, f"{k.value}.")

    walk(node, "")
    return out


def load_run_config(path: Path) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (any run's ``config.yaml``, or a hand-written subset: keys left
    out keep their defaults). ``resume`` and ``dry_run`` describe what a command did, not the run, and are
    not taken from the file."""
    path = Path(path)
    data = read_yaml(path, "run config")
    try:
        cfg = from_dict(TrainConfig, data, where=str(path), lines=_key_lines(path.read_text(encoding="utf-8")))
    except ConfigError as e:
        msg = str(e)
        raise type(e)(msg if msg.startswith(str(path)) else f"{path}: {msg}") from e
    return dataclasses.replace(cfg, resume=None, dry_run=False)


def save_yaml(obj: Any, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))


def load_yaml(cls: type, path: Path) -> Any:
    data = yaml.safe_load(Path(path).read_text()) or {}
    return from_dict(cls, data, where=str(path))


__all__ = ["AugmentConfig", "ScheduleConfig", "TrainConfig", "apply_overrides", "apply_values", "ConfigError",
           "UnknownChoiceError", "did_you_mean", "unknown_choice", "configs_dir", "read_yaml", "recipe_files",
           "recipe_names", "resolve_key", "get_value", "with_unset", "coerce", "field_default", "load_run_config", "to_dict", "from_dict", "save_yaml", "load_yaml", "field"]
