"""instseg's :class:`TrainConfig` -> Ultralytics' train arguments (pure functions, no Ultralytics import).

Every option is mapped one to one where Ultralytics has it (same name, same meaning). An option that
Ultralytics cannot express raises :class:`ConfigError` naming the option and what to do instead; nothing is
dropped silently. ``instseg train --dry-run`` prints :func:`resolve_ultralytics_args`.

Not Ultralytics arguments, and where they go instead: architecture/model/weights/pretrained pick the model
file (``<family><size>-seg.yaml`` for random init, the ``.pt`` otherwise); ``best_metric`` picks the
validation metric that chooses best.pt and drives early stopping (:data:`FITNESS_KEYS`); ``quiet`` ->
``verbose=False``; ``freeze`` counts Ultralytics *layers* (model.0 .. model.N-1), its own meaning;
``schedule.step_size/gamma`` only serve the refused 'step' recipe; ``augment.brightness/contrast`` only
serve ``brightness_contrast_p > 0``, which is refused.
"""

from __future__ import annotations

from pathlib import Path

from instseg.config import AugmentConfig, ConfigError, ScheduleConfig, TrainConfig

FAMILIES: dict[str, str] = {"yolo11-seg": "yolo11", "yolo26-seg": "yolo26"}
"""instseg architecture -> Ultralytics model file prefix (``yolo11`` + size + ``-seg``)."""

FITNESS_KEYS: dict[str, str] = {
    "segm_mAP": "metrics/mAP50-95(M)",
    "segm_mAP50": "metrics/mAP50(M)",
    "bbox_mAP": "metrics/mAP50-95(B)",
    "fitness": "fitness",
}
"""instseg ``best_metric`` -> the Ultralytics validation metric that picks best.pt and early-stops."""

SAME_NAME_AUGMENT = ("hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective",
                     "flipud", "fliplr", "mosaic", "mixup", "copy_paste", "close_mosaic")
"""AugmentConfig fields that Ultralytics has under the same name with the same meaning."""

ULTRALYTICS_CLIP_GRAD = 10.0  # Ultralytics' optimizer_step clips the gradient norm at 10, not configurable
DEFAULT_MIN_AREA = AugmentConfig().min_area
_SCHEDULE_DEFAULTS = ScheduleConfig()


def model_stem(architecture: str, size: str) -> str:
    """``('yolo11-seg', 'n') -> 'yolo11n-seg'``: the stem of Ultralytics' model YAML and weight files."""
    try:
        family = FAMILIES[architecture]
    except KeyError as e:
        raise ConfigError(f"architecture={architecture!r} is not an Ultralytics model; valid: "
                          f"{', '.join(FAMILIES)}") from e
    return f"{family}{size}-seg"


def default_size(cfg: TrainConfig) -> str:
    """``cfg.model``, or the architecture's default size from the registry."""
    from instseg.models.registry import get_architecture

    if cfg.model:
        return cfg.model
    try:
        return get_architecture(cfg.architecture).default_size
    except KeyError as e:
        raise ConfigError(str(e.args[0])) from e


def check_expressible(cfg: TrainConfig) -> None:
    """Raise ConfigError for the first option Ultralytics' trainer cannot express (named, with the fix)."""
    sch, aug = cfg.schedule, cfg.augment
    problems: list[str] = []
    if sch.recipe not in (None, "ultralytics", "upstream"):
        problems.append(f"schedule={sch.recipe!r}: Ultralytics' trainer has only its own schedule; use "
                        "--schedule ultralytics (linear or --cos-lr decay) or another architecture")
    if sch.clip_grad not in (None, ULTRALYTICS_CLIP_GRAD):
        problems.append(f"clip_grad={sch.clip_grad}: Ultralytics always clips the gradient norm at "
                        f"{ULTRALYTICS_CLIP_GRAD}; leave clip_grad unset")
    if aug.recipe == "torchvision":
        problems.append("augment.recipe='torchvision': Ultralytics only has its own pipeline; use "
                        "'ultralytics' or 'none'")
    if aug.brightness_contrast_p > 0:
        problems.append(f"brightness_contrast_p={aug.brightness_contrast_p}: Ultralytics has no random "
                        "brightness/contrast step; set it to 0 (hsv_v covers brightness)")
    if aug.min_area != DEFAULT_MIN_AREA:
        problems.append(f"min_area={aug.min_area}: Ultralytics filters augmented instances with its own "
                        f"box rule (w, h > 2 px); leave min_area at {DEFAULT_MIN_AREA}")
    if cfg.ema is False:
        problems.append("ema=False: Ultralytics' trainer always keeps an EMA; leave ema unset")
    if cfg.pretrained_backbone:
        problems.append("pretrained_backbone=True: Ultralytics has no backbone-only weights; use --pretrained "
                        "(the whole COCO model)")
    for name in ("compile", "channels_last", "cpu_amp", "roi_batch"):
        if getattr(cfg, name):
            problems.append(f"{name}={getattr(cfg, name)}: instseg's engine option, not one of Ultralytics' "
                            "trainer; leave it unset for YOLO (Ultralytics has its own amp)")
    if cfg.val_period != 1:
        problems.append(f"val_period={cfg.val_period}: Ultralytics validates after every epoch; use 1")
    if problems:
        raise ConfigError("option(s) that Ultralytics cannot express:\n  " + "\n  ".join(problems))


def _augment_args(aug: AugmentConfig) -> dict:
    args = {name: getattr(aug, name) for name in SAME_NAME_AUGMENT}
    if aug.recipe == "none":  # letterbox only: every random transform off
        for name in SAME_NAME_AUGMENT:
            if name != "close_mosaic":
                args[name] = 0.0
    return args


def _schedule_args(sch: ScheduleConfig) -> dict:
    """Schedule options; ``None`` keeps Ultralytics' own default (what the 'ultralytics' recipe means)."""
    args: dict = {"optimizer": sch.optimizer or "auto"}
    for name in ("lr0", "lrf", "momentum", "weight_decay", "warmup_epochs"):
        value = getattr(sch, name)
        if value is not None:
            args[name] = value
    args.update(warmup_momentum=sch.warmup_momentum, warmup_bias_lr=sch.warmup_bias_lr,
                cos_lr=sch.cos_lr, nbs=sch.nbs)
    return args


def resolve_ultralytics_args(cfg: TrainConfig, run_root: Path | None = None,
                             data_yaml: Path | None = None) -> dict:
    """The keyword arguments instseg passes to Ultralytics' ``model.train``.

    ``run_root`` is instseg's run folder (Ultralytics writes into it: ``project`` = its parent, ``name`` =
    its name, ``exist_ok`` = True); without it the arguments name instseg's default project. ``data_yaml``
    replaces ``cfg.data`` (e.g. a data.yaml converted from COCO JSON). Raises ConfigError for an option
    Ultralytics cannot express.
    """
    from instseg.models.registry import get_size

    check_expressible(cfg)
    size = default_size(cfg)
    try:
        spec = get_size(cfg.architecture, size)
    except KeyError as e:
        raise ConfigError(str(e.args[0])) from e
    model_stem(cfg.architecture, size)  # validates the family
    if run_root is None:
        run_root = Path("work_dirs") / f"{cfg.architecture}-{size}" / cfg.name
    run_root = Path(run_root).resolve()
    args: dict = {
        "data": str(data_yaml or cfg.data) if (data_yaml or cfg.data) else None,
        "epochs": cfg.epochs,
        "time": cfg.time,  # hours; Ultralytics re-plans its epochs from the measured epoch time
        "batch": cfg.batch or spec.default_batch,
        "imgsz": cfg.imgsz or spec.default_imgsz,
        "device": cfg.device or None,
        "workers": cfg.workers,
        "seed": cfg.seed,
        "deterministic": cfg.deterministic,
        "amp": cfg.amp,
        "cache": cfg.cache or False,
        "patience": cfg.patience,  # 0 = off in both
        "freeze": cfg.freeze or None,
        "pretrained": bool(cfg.pretrained or cfg.weights),
        "conf": cfg.val_conf,
        "max_det": cfg.max_det,
        "verbose": not cfg.quiet,
        "project": str(run_root.parent),
        "name": run_root.name,
        "exist_ok": True,
        "plots": False,  # instseg draws its own figures; Ultralytics' plots want a downloaded font
        "val": True,
    }
    args.update(_schedule_args(cfg.schedule))
    args.update(_augment_args(cfg.augment))
    return args


RESULTS_METRICS: dict[str, str] = {
    "segm_mAP": "metrics/mAP50-95(M)",
    "segm_mAP50": "metrics/mAP50(M)",
    "bbox_mAP": "metrics/mAP50-95(B)",
    "bbox_mAP50": "metrics/mAP50(B)",
}
"""instseg metric name -> Ultralytics' validation metric (mAP75 comes from the validator object)."""


def instseg_results_row(epoch: int, seconds: float, metrics: dict, extra: dict | None = None,
                        val_seconds: float | None = None) -> dict:
    """One row of instseg's results.csv (columns of ``instseg.engine.logger.results_columns``) from what
    Ultralytics' trainer logs for one epoch: ``seconds`` of its training (validation excluded, as for every
    backend), ``val_seconds`` of its validation (None when the epoch was not validated).

    ``metrics`` is Ultralytics' dict (``train/<loss>``, ``metrics/...(B|M)``, ``val/<loss>``, ``lr/pgN``);
    ``extra`` holds ``segm_mAP75``/``bbox_mAP75`` read from the validator. ``train/loss`` is the sum of the
    loss terms; ``metrics/*`` are fractions in [0, 1] from Ultralytics' own validator (None when the epoch
    was not validated); ``metrics/fitness`` = 0.1 * segm_mAP50 + 0.9 * segm_mAP, as for every backend.
    """
    extra = extra or {}
    losses = {k: float(v) for k, v in metrics.items() if k.startswith("train/")}
    row: dict = {"epoch": int(epoch), "time": round(float(seconds), 3),
                 "time/val": None if val_seconds is None else round(float(val_seconds), 3),
                 "train/loss": sum(losses.values())}
    row.update({k: float(v) for k, v in metrics.items() if k.startswith("lr/")})
    flat: dict = {}
    for prefix in ("segm", "bbox"):
        for suffix in ("", "50", "75"):
            name = f"{prefix}_mAP{suffix}"
            value = metrics.get(RESULTS_METRICS[name]) if name in RESULTS_METRICS else extra.get(name)
            flat[name] = None if value is None else float(value)
    if flat["segm_mAP"] is not None and flat["segm_mAP50"] is not None:
        flat["fitness"] = 0.1 * flat["segm_mAP50"] + 0.9 * flat["segm_mAP"]
    row.update({f"metrics/{k}": v for k, v in flat.items()})
    row.update(losses)
    return row


__all__ = ["FAMILIES", "FITNESS_KEYS", "RESULTS_METRICS", "SAME_NAME_AUGMENT", "check_expressible",
           "default_size", "instseg_results_row", "model_stem", "resolve_ultralytics_args"]
