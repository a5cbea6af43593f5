"""Optimizer parameter groups as Ultralytics builds them, and applying a schedule to an optimizer.

Groups, in order: ``weight`` (weights of everything that is not a normalization layer, decayed), ``bn``
(normalization-layer weights, no decay), ``bias`` (every parameter whose name contains "bias", no decay).
Frozen parameters (``requires_grad=False``) are left out.
"""

from __future__ import annotations

from instseg.engine.schedule import GROUPS, ResolvedSchedule, accumulate_at, lr_at, momentum_at


def _norm_types() -> tuple[type, ...]:
    """Every ``torch.nn`` class with "Norm" in its name (BatchNorm2d, GroupNorm, LayerNorm, ...)."""
    from torch import nn

    extra: tuple[type, ...] = ()
    try:  # torchvision's FrozenBatchNorm2d has buffers only, but a subclass may have weights
        from torchvision.ops import FrozenBatchNorm2d

        extra = (FrozenBatchNorm2d,)
    except ImportError:
        pass
    return tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type)) + extra


def split_parameters(model) -> dict[str, list]:
    """The trainable parameters of ``model`` split into {"weight": [...], "bn": [...], "bias": [...]}."""
    norms = _norm_types()
    groups: dict[str, list] = {g: [] for g in GROUPS}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{param_name}" if module_name else param_name
            if "bias" in full:
                groups["bias"].append(param)
            elif isinstance(module, norms):
                groups["bn"].append(param)
            else:
                groups["weight"].append(param)
    return groups


def build_optimizer(model, s: ResolvedSchedule):
    """The optimizer of schedule ``s`` over ``model``'s three parameter groups (each tagged ``param_group``)."""
    import torch

    groups = split_parameters(model)
    if s.optimizer == "SGD":
        base = {"lr": s.lr0, "momentum": s.momentum, "nesterov": s.nesterov}
        cls = torch.optim.SGD
    elif s.optimizer in ("Adam", "AdamW"):
        base = {"lr": s.lr0, "betas": (s.momentum, 0.999)}
        cls = getattr(torch.optim, s.optimizer)
    else:
        raise ValueError(f"optimizer {s.optimizer!r}; valid: SGD, Adam, AdamW")
    decay = {"weight": s.weight_decay, "bn": 0.0, "bias": 0.0}
    param_groups = [{"params": groups[g], **base, "weight_decay": decay[g], "param_group": g,
                     "initial_lr": s.lr0} for g in GROUPS]
    # foreach: one multi-tensor kernel per update op instead of a Python loop over the tensors (torch picks
    # it by itself on CUDA only; scripts/bench/bench_step_knobs.py measures it on the CPU)
    return cls(param_groups, **base, foreach=True)


def apply_schedule(optimizer, s: ResolvedSchedule, ni: int) -> int:
    """Set every group's lr (and momentum / beta1) for global iteration ``ni``; return the accumulation."""
    lrs = dict(zip(GROUPS, lr_at(s, ni)))
    m = momentum_at(s, ni)
    for group in optimizer.param_groups:
        group["lr"] = lrs[group.get("param_group", "weight")]
        if "momentum" in group:
            group["momentum"] = m
        elif "betas" in group:
            group["betas"] = (m, group["betas"][1])
    return accumulate_at(s, ni)


__all__ = ["split_parameters", "build_optimizer", "apply_schedule"]
