"""Learning-rate, momentum and accumulation schedules as pure functions of training progress.

``resolve_schedule`` turns a :class:`~instseg.config.ScheduleConfig` (user overrides, ``None`` = the recipe
decides) plus the run's shape (epochs, batches per epoch, batch size, class count) into a frozen
:class:`ResolvedSchedule`. ``lr_at``, ``momentum_at`` and ``accumulate_at`` then give the values for one
*global iteration* ``ni = epoch * nb + i`` (0-based, ``i`` the batch index inside the epoch). The trainer sets
them on the optimizer before each forward pass; nothing else changes the learning rate.

Parameter groups are Ultralytics' three, in its order: ``weight`` (decayed), ``bn`` (norm weights, no
decay), ``bias`` (no decay). Recipes (DESIGN.md, "The schedule recipes"):

* ``ultralytics``: Ultralytics' ``BaseTrainer`` to the iteration (checked against a recording of its real
  trainer in ``tests/engine/fixtures/ultralytics_schedule.json``): optimizer ``auto``, nominal batch size
  ``nbs`` with accumulation and weight-decay scaling, ``np.interp`` warmup (bias lr falls from
  ``warmup_bias_lr``, other groups rise from 0, momentum rises from ``warmup_momentum``), then the per-epoch
  factor ``(1 - e/epochs)(1 - lrf) + lrf`` (or cosine with ``cos_lr``).
* ``warmup-cosine``: SGD 0.937, weight decay 5e-4, ``lr0 = 0.002*5/(4+nc)``, 7 warmup epochs rising linearly
  from 2 % of lr0, then a per-iteration cosine down to ``lrf = 0.017`` of lr0.
* ``step``: torchvision's detection reference: SGD 0.005, momentum 0.9, weight decay 5e-4, first-epoch
  linear warmup from 1/1000 over ``min(1000, nb - 1)`` iterations, lr x ``gamma`` every ``step_size`` epochs.
* ``upstream``: the architecture's published recipe (``UPSTREAM``), epochs scaled to the run's length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from instseg.config import ConfigError, ScheduleConfig

GROUPS = ("weight", "bn", "bias")
"""Parameter-group names, in optimizer order (pg0, pg1, pg2)."""


@dataclass(frozen=True)
class ResolvedSchedule:
    """Every number the optimizer needs for one run. Epochs and iterations are 0-based counts."""

    recipe: str
    optimizer: str  # "SGD", "AdamW" or "Adam"
    lr0: float  # peak learning rate
    lrf: float  # final lr as a fraction of lr0
    momentum: float  # SGD momentum / Adam beta1 after warmup
    weight_decay: float  # applied to the "weight" group (already scaled by batch*accumulate/nbs)
    nesterov: bool
    epochs: int
    nb: int  # optimizer-independent batches per epoch (per rank)
    decay: str  # "linear" | "cosine" (per epoch, Ultralytics) | "iter-cosine" | "step" | "multistep" | "flat-cosine"
    warmup_iters: int  # 0 = no warmup
    warmup_style: str  # "interp" (Ultralytics, from 0 / warmup_bias_lr) or "factor" (from warmup_start_factor)
    warmup_start_factor: float = 1.0
    warmup_momentum: float = 0.8
    warmup_bias_lr: float = 0.0
    step_size: int = 10  # "step": epochs between decays
    milestones: tuple[int, ...] = ()  # "multistep": epochs at which lr is multiplied by gamma
    gamma: float = 0.1
    flat_epochs: int = 0  # "flat-cosine": epochs at full lr before the cosine starts
    accumulate: int = 1  # nominal accumulation (batches per optimizer step) after warmup
    clip_grad: float | None = None  # max gradient norm, None = no clipping
    ema: bool = False
    ema_decay: float = 0.9999
    close_mosaic: int = 0  # mosaic off for the last N epochs

    @property
    def total_iters(self) -> int:
        return self.epochs * self.nb


# The architectures' own published recipes, as ScheduleConfig-like defaults plus schedule shape.
UPSTREAM: dict[str, dict] = {
    # mmdetection configs/rtmdet/rtmdet-ins_*: AdamW 0.004, wd 0.05, LinearLR 1e-5 over 1000 iters,
    # cosine over the second half to 0.05*lr, EMA momentum 2e-4, last 20 of 300 epochs without mosaic.
    "rtmdet-ins": dict(optimizer="AdamW", lr0=0.004, lrf=0.05, momentum=0.9, weight_decay=0.05,
                       warmup_iters=1000, warmup_start_factor=1e-5, decay="flat-cosine", clip_grad=None,
                       ema=True, ema_decay=0.9998, close_mosaic_fraction=20 / 300, nesterov=False),
    # mmdetection configs/solov2/solov2_r50_fpn_ms-3x_coco: SGD 0.01, momentum 0.9, wd 1e-4, linear warmup
    # 500 iters from 0.01, lr x0.1 at epochs 27 and 33 of 36, gradient clipping at norm 35.
    "solov2": dict(optimizer="SGD", lr0=0.01, lrf=0.01, momentum=0.9, weight_decay=1e-4, warmup_iters=500,
                   warmup_start_factor=0.01, decay="multistep", milestone_fractions=(27 / 36, 33 / 36),
                   clip_grad=35.0, ema=False, nesterov=False),
}


def _pick(value, default):
    return default if value is None else value


def ultralytics_warmup_iters(warmup_epochs: float, epochs: int, nb: int) -> int:
    """Ultralytics' ``_get_warmup_iterations``: leave at least the last epoch out of warmup."""
    we = min(warmup_epochs, max(epochs - 1, 0))
    return round(we * nb) if we > 0 else 0


def auto_optimizer(n_train: int, batch: int, nbs: int, epochs: int, nc: int) -> tuple[str, float, float]:
    """Ultralytics' ``optimizer=auto``: (name, lr0, momentum) from the run's iteration count.

    More than 10k optimizer iterations (``ceil(n_train / max(batch, nbs)) * epochs``) -> SGD 0.01 / 0.9
    (Ultralytics >= 8.4 picks its MuSGD there; instseg keeps plain SGD), else AdamW with
    ``round(0.002 * 5 / (4 + nc), 6)`` / 0.9.
    """
    iterations = math.ceil(n_train / max(batch, nbs)) * epochs
    if iterations > 10000:
        return "SGD", 0.01, 0.9
    return "AdamW", round(0.002 * 5 / (4 + nc), 6), 0.9


def resolve_schedule(
    cfg: ScheduleConfig,
    *,
    architecture: str,
    default_recipe: str,
    epochs: int,
    nb: int,
    batch: int,
    n_train: int,
    nc: int,
    close_mosaic: int = 10,
    ema: bool | None = None,
) -> ResolvedSchedule:
    """The schedule of one run. ``batch`` is the total batch (all ranks), ``nb`` the batches per epoch per rank.

    Explicit values in ``cfg`` always win over the recipe's; ``ema`` (TrainConfig.ema) likewise.
    """
    if nb < 1 or epochs < 1 or batch < 1:
        raise ConfigError(f"schedule needs nb, epochs, batch >= 1 (got nb={nb}, epochs={epochs}, batch={batch})")
    recipe = cfg.recipe or default_recipe
    if recipe == "upstream" and architecture not in UPSTREAM:
        recipe = "ultralytics" if architecture.startswith("yolo") else "step"
    if recipe == "ultralytics":
        s = _ultralytics(cfg, epochs, nb, batch, n_train, nc, close_mosaic)
    elif recipe == "warmup-cosine":
        lr0 = _pick(cfg.lr0, 0.002 * 5 / (4 + nc))
        s = ResolvedSchedule(
            recipe=recipe, optimizer=_opt(cfg.optimizer, "SGD"), lr0=lr0, lrf=_pick(cfg.lrf, 0.017),
            momentum=_pick(cfg.momentum, 0.937), weight_decay=_pick(cfg.weight_decay, 5e-4), nesterov=True,
            epochs=epochs, nb=nb, decay="iter-cosine",
            warmup_iters=ultralytics_warmup_iters(_pick(cfg.warmup_epochs, 7.0), epochs, nb),
            warmup_style="factor", warmup_start_factor=0.02, clip_grad=_pick(cfg.clip_grad, 10.0), ema=True,
            close_mosaic=close_mosaic)
    elif recipe == "step":
        warm = min(1000, nb - 1) if cfg.warmup_epochs is None else ultralytics_warmup_iters(cfg.warmup_epochs, epochs, nb)
        s = ResolvedSchedule(
            recipe=recipe, optimizer=_opt(cfg.optimizer, "SGD"), lr0=_pick(cfg.lr0, 0.005),
            lrf=_pick(cfg.lrf, cfg.gamma), momentum=_pick(cfg.momentum, 0.9),
            weight_decay=_pick(cfg.weight_decay, 5e-4), nesterov=False, epochs=epochs, nb=nb, decay="step",
            warmup_iters=max(warm, 0), warmup_style="factor", warmup_start_factor=1e-3, step_size=cfg.step_size,
            gamma=cfg.gamma, clip_grad=cfg.clip_grad, ema=False, close_mosaic=close_mosaic)
    elif recipe == "upstream":
        u = UPSTREAM[architecture]
        warm = u["warmup_iters"] if cfg.warmup_epochs is None else ultralytics_warmup_iters(cfg.warmup_epochs, epochs, nb)
        milestones = tuple(max(1, round(f * epochs)) for f in u.get("milestone_fractions", ()))
        cm = max(1, round(u["close_mosaic_fraction"] * epochs)) if "close_mosaic_fraction" in u else close_mosaic
        s = ResolvedSchedule(
            recipe=recipe, optimizer=_opt(cfg.optimizer, u["optimizer"]), lr0=_pick(cfg.lr0, u["lr0"]),
            lrf=_pick(cfg.lrf, u["lrf"]), momentum=_pick(cfg.momentum, u["momentum"]),
            weight_decay=_pick(cfg.weight_decay, u["weight_decay"]), nesterov=u["nesterov"], epochs=epochs,
            nb=nb, decay=u["decay"], warmup_iters=min(warm, max(epochs - 1, 0) * nb) if epochs > 1 else 0,
            warmup_style="factor", warmup_start_factor=u["warmup_start_factor"], milestones=milestones,
            gamma=cfg.gamma, flat_epochs=epochs // 2, clip_grad=_pick(cfg.clip_grad, u["clip_grad"]),
            ema=u["ema"], ema_decay=u.get("ema_decay", 0.9999), close_mosaic=cm)
    else:  # ScheduleConfig.__post_init__ already rejects other names
        raise ConfigError(f"schedule={recipe!r}; valid: ultralytics, warmup-cosine, step, upstream")
    if cfg.cos_lr and s.decay == "linear":
        s = replace(s, decay="cosine")
    if ema is not None:
        s = replace(s, ema=ema)
    return s


def _opt(name: str | None, default: str) -> str:
    return default if name in (None, "auto") else name


def _ultralytics(cfg: ScheduleConfig, epochs: int, nb: int, batch: int, n_train: int, nc: int,
                 close_mosaic: int) -> ResolvedSchedule:
    name = cfg.optimizer or "auto"
    lr0 = _pick(cfg.lr0, 0.01)
    momentum = _pick(cfg.momentum, 0.937)
    bias_lr = cfg.warmup_bias_lr
    if name == "auto":
        name, auto_lr, auto_m = auto_optimizer(n_train, batch, cfg.nbs, epochs, nc)
        lr0, momentum = _pick(cfg.lr0, auto_lr), _pick(cfg.momentum, auto_m)
        bias_lr = 0.0  # Ultralytics starts the bias warmup at zero under optimizer=auto
    accumulate = max(round(cfg.nbs / batch), 1)
    weight_decay = _pick(cfg.weight_decay, 5e-4) * batch * accumulate / cfg.nbs
    accumulate = min(accumulate, nb * epochs)
    return ResolvedSchedule(
        recipe="ultralytics", optimizer=name, lr0=lr0, lrf=_pick(cfg.lrf, 0.01), momentum=momentum,
        weight_decay=weight_decay, nesterov=True, epochs=epochs, nb=nb,
        decay="cosine" if cfg.cos_lr else "linear",
        warmup_iters=ultralytics_warmup_iters(_pick(cfg.warmup_epochs, 3.0), epochs, nb), warmup_style="interp",
        warmup_momentum=cfg.warmup_momentum, warmup_bias_lr=bias_lr, accumulate=accumulate,
        clip_grad=_pick(cfg.clip_grad, 10.0), ema=True, close_mosaic=close_mosaic)


def decay_factor(s: ResolvedSchedule, ni: int) -> float:
    """The lr multiplier (of lr0) of the decay part of the schedule at global iteration ``ni``, no warmup."""
    epoch = ni // s.nb
    if s.decay == "linear":
        return max(1 - epoch / s.epochs, 0) * (1.0 - s.lrf) + s.lrf
    if s.decay == "cosine":
        return max((1 - math.cos(epoch * math.pi / s.epochs)) / 2, 0) * (s.lrf - 1) + 1
    if s.decay == "step":
        return s.gamma ** (epoch // max(s.step_size, 1))
    if s.decay == "multistep":
        return s.gamma ** sum(epoch >= m for m in s.milestones)
    if s.decay == "iter-cosine":
        span = max(s.total_iters - s.warmup_iters, 1)
        t = min(max(ni - s.warmup_iters, 0) / span, 1.0)
        return s.lrf + (1 - s.lrf) * (1 + math.cos(math.pi * t)) / 2
    if s.decay == "flat-cosine":
        begin = s.flat_epochs * s.nb
        if ni < begin:
            return 1.0
        t = min((ni - begin) / max(s.total_iters - begin, 1), 1.0)
        return s.lrf + (1 - s.lrf) * (1 + math.cos(math.pi * t)) / 2
    raise ConfigError(f"unknown decay {s.decay!r}")


def lr_at(s: ResolvedSchedule, ni: int) -> tuple[float, float, float]:
    """Learning rates of the (weight, bn, bias) groups at global iteration ``ni`` (0-based)."""
    target = s.lr0 * decay_factor(s, ni)
    if s.warmup_iters and ni <= s.warmup_iters:
        if s.warmup_style == "interp":
            xp = [0, s.warmup_iters]
            other = float(np.interp(ni, xp, [0.0, target]))
            bias = float(np.interp(ni, xp, [s.warmup_bias_lr, target]))
            return other, other, bias
        f = s.warmup_start_factor + (1 - s.warmup_start_factor) * ni / s.warmup_iters
        target *= f
    return target, target, target


def momentum_at(s: ResolvedSchedule, ni: int) -> float:
    """SGD momentum (Adam beta1) at ``ni``. Only Ultralytics' recipe warms it up, and only for SGD, as its
    trainer does (Adam groups have no ``momentum`` key there)."""
    if s.warmup_style == "interp" and s.optimizer == "SGD" and s.warmup_iters and ni <= s.warmup_iters:
        return float(np.interp(ni, [0, s.warmup_iters], [s.warmup_momentum, s.momentum]))
    return s.momentum


def accumulate_at(s: ResolvedSchedule, ni: int) -> int:
    """Batches per optimizer step at ``ni``: Ultralytics ramps it from 1 to ``accumulate`` during warmup."""
    if s.warmup_style == "interp" and s.warmup_iters and ni <= s.warmup_iters:
        return max(1, int(np.interp(ni, [0, s.warmup_iters], [1, s.accumulate]).round()))
    return s.accumulate


__all__ = ["GROUPS", "ResolvedSchedule", "UPSTREAM", "resolve_schedule", "auto_optimizer", "decay_factor",
           "lr_at", "momentum_at", "accumulate_at", "ultralytics_warmup_iters"]
