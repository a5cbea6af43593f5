"""Learning-rate, momentum and accumulation schedules as pure functions of training progress.

``resolve_schedule`` turns a :class:`~instseg.config.ScheduleConfig` (user overrides, ``None`` = the recipe
decides) plus the run's shape (epochs, batches per epoch, batch size, class count) into a frozen
:class:`ResolvedSchedule`. ``lr_at``, ``momentum_at`` and ``accumulate_at`` then give the values for one
*global iteration* ``ni = epoch * nb + i`` (0-based, ``i`` the batch index inside the epoch). The trainer sets
them on the optimizer before each forward pass; nothing else changes the learning rate.

Parameter groups are Ultralytics' three, in its order: ``weight`` (decayed), ``bn`` (norm weights, no
decay), ``bias`` (no decay).

Recipes are files, ``configs/recipes/<name>.yaml`` (DESIGN.md, "The schedule recipes"); this module only
interprets their keys and knows no architecture:

* ``optimizer`` (``auto``: Ultralytics' rule, :func:`auto_optimizer`), ``lr0`` (``lr0_scale: nc`` multiplies
  it by ``5 / (4 + nc)``), ``lrf``, ``momentum``, ``weight_decay``, ``nesterov``, ``clip_grad``, ``ema``,
  ``ema_decay``;
* ``nominal_batch: true``: Ultralytics' gradient accumulation to ``nbs`` images with weight-decay scaling;
* ``warmup``: ``interp`` (Ultralytics: ``np.interp``, bias lr falls from ``warmup_bias_lr``, other groups
  rise from 0, momentum rises from ``warmup_momentum``) or ``factor`` (lr x a factor rising linearly from
  ``warmup_start_factor``); its length is ``warmup_epochs`` (all but the last epoch at most) or
  ``warmup_iters`` (capped at all but the last epoch; with ``warmup_fraction``:
  ``min(warmup_iters, max(ceil(fraction * total_iters), nb - 1))``);
* ``decay``: ``linear``/``cosine`` (Ultralytics, per epoch), ``iter-cosine``, ``step`` (x ``gamma`` every
  ``step_size`` epochs), ``multistep`` (x ``gamma`` at ``milestones``), ``flat-cosine`` (flat for
  ``flat_fraction`` of the run, then cosine);
* ``published_epochs``: ``milestones`` and ``close_mosaic`` count epochs of the published schedule and are
  scaled to the run's length;
* ``upstream_for``: the architectures whose own published schedule this is (``--schedule upstream``).

An explicit ScheduleConfig value always wins over the recipe's; a None keeps the recipe's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from instseg.config import ConfigError, ScheduleConfig, field_default

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


RECIPE_KEYS = {"summary", "upstream_for", "optimizer", "lr0", "lr0_scale", "lrf", "momentum", "weight_decay",
               "nesterov", "nominal_batch", "warmup", "warmup_epochs", "warmup_iters", "warmup_fraction",
               "warmup_start_factor", "decay", "flat_fraction", "clip_grad", "ema", "ema_decay",
               "published_epochs", "milestones", "close_mosaic"}
DECAYS = ("linear", "cosine", "iter-cosine", "step", "multistep", "flat-cosine")


def load_recipe(name: str) -> dict:
    """The keys of ``configs/recipes/<name>.yaml``, checked (unknown keys and values name the file)."""
    from instseg.config import read_yaml, recipe_files, unknown_choice

    files = recipe_files()
    if name not in files:
        raise unknown_choice("schedule recipe", name, (*files, "upstream"))
    path = files[name]
    r = read_yaml(path, "recipe")
    unknown = sorted(set(r) - RECIPE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown recipe keys {unknown}; valid: {', '.join(sorted(RECIPE_KEYS))}")
    for key in ("optimizer", "lr0", "decay", "warmup"):
        if key not in r:
            raise ConfigError(f"{path}: missing key {key!r}")
    if r["decay"] not in DECAYS:
        raise unknown_choice("decay", r["decay"], DECAYS, f"{path}: ")
    if r["warmup"] not in ("interp", "factor"):
        raise unknown_choice("warmup", r["warmup"], ("interp", "factor"), f"{path}: ")
    return r


def upstream_recipe(architecture: str) -> str:
    """The recipe file whose ``upstream_for`` names ``architecture``; ConfigError naming those that exist."""
    from instseg.config import recipe_files

    have = {}
    for name in recipe_files():
        for arch in load_recipe(name).get("upstream_for") or ():
            have.setdefault(arch, name)
    if architecture not in have:
        raise ConfigError(f"schedule=upstream: no recipe in configs/recipes/ names {architecture!r} in its "
                          f"upstream_for (those that exist: {', '.join(f'{a}: {n}' for a, n in have.items())}); "
                          f"pick a recipe by name (--schedule ultralytics)")
    return have[architecture]


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
    close_mosaic: int | None = None,
    ema: bool | None = None,
) -> ResolvedSchedule:
    """The schedule of one run. ``batch`` is the total batch (all ranks), ``nb`` the batches per epoch per rank.

    Explicit values in ``cfg`` always win over the recipe's; ``ema`` (TrainConfig.ema) likewise.
    ``architecture`` only picks the recipe of ``--schedule upstream``; ``close_mosaic`` None = AugmentConfig's.
    """
    if close_mosaic is None:
        close_mosaic = field_default("augment", "close_mosaic")
    if nb < 1 or epochs < 1 or batch < 1:
        raise ConfigError(f"schedule needs nb, epochs, batch >= 1 (got nb={nb}, epochs={epochs}, batch={batch})")
    recipe = cfg.recipe or default_recipe
    if recipe == "upstream":
        recipe = upstream_recipe(architecture)
    r = load_recipe(recipe)
    total = epochs * nb

    name = cfg.optimizer or r["optimizer"]
    lr0 = float(r["lr0"]) * (5 / (4 + nc) if r.get("lr0_scale") == "nc" else 1.0)
    lr0, momentum = _pick(cfg.lr0, lr0), _pick(cfg.momentum, r.get("momentum", 0.9))
    bias_lr = cfg.warmup_bias_lr
    if name == "auto":
        name, auto_lr, auto_m = auto_optimizer(n_train, batch, cfg.nbs, epochs, nc)
        lr0, momentum = _pick(cfg.lr0, auto_lr), _pick(cfg.momentum, auto_m)
        bias_lr = 0.0  # Ultralytics starts the bias warmup at zero under optimizer=auto
    weight_decay, accumulate = _pick(cfg.weight_decay, r.get("weight_decay", 5e-4)), 1
    if r.get("nominal_batch"):
        accumulate = max(round(cfg.nbs / batch), 1)
        weight_decay = weight_decay * batch * accumulate / cfg.nbs
        accumulate = min(accumulate, total)

    if cfg.warmup_epochs is not None or "warmup_epochs" in r:
        warm = ultralytics_warmup_iters(_pick(cfg.warmup_epochs, r.get("warmup_epochs")), epochs, nb)
    else:
        warm = int(r.get("warmup_iters", 0))
        if r.get("warmup_fraction"):
            warm = min(warm, max(math.ceil(r["warmup_fraction"] * total), nb - 1))
        else:
            warm = min(warm, (epochs - 1) * nb)

    scale = epochs / r["published_epochs"] if r.get("published_epochs") else 1.0
    milestones = tuple(max(1, round(m * scale)) for m in r.get("milestones", ()))
    if "close_mosaic" in r:
        close_mosaic = max(1, round(r["close_mosaic"] * scale))
    decay = r["decay"]
    if cfg.cos_lr and decay == "linear":
        decay = "cosine"
    return ResolvedSchedule(
        recipe=recipe, optimizer=_opt(name, "SGD"), lr0=lr0, lrf=_pick(cfg.lrf, r.get("lrf", cfg.gamma)),
        momentum=momentum, weight_decay=weight_decay, nesterov=bool(r.get("nesterov", False)), epochs=epochs,
        nb=nb, decay=decay, warmup_iters=max(warm, 0), warmup_style=r["warmup"],
        warmup_start_factor=float(r.get("warmup_start_factor", 1.0)), warmup_momentum=cfg.warmup_momentum,
        warmup_bias_lr=bias_lr, step_size=cfg.step_size, milestones=milestones, gamma=cfg.gamma,
        flat_epochs=int(epochs * r.get("flat_fraction", 0.0)), accumulate=accumulate,
        clip_grad=_pick(cfg.clip_grad, r.get("clip_grad")), ema=bool(r.get("ema", False)) if ema is None else ema,
        ema_decay=float(r.get("ema_decay", 0.9999)), close_mosaic=close_mosaic)


def _opt(name: str | None, default: str) -> str:
    return default if name in (None, "auto") else name


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


__all__ = ["GROUPS", "ResolvedSchedule", "load_recipe", "upstream_recipe", "resolve_schedule", "auto_optimizer", "decay_factor",
           "lr_at", "momentum_at", "accumulate_at", "ultralytics_warmup_iters"]
