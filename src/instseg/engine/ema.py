"""Exponential moving average of a model's weights, as Ultralytics keeps it.

``decay(updates) = decay_max * (1 - exp(-updates / tau))``: small at the start (the average follows the
model closely while it changes fast), ``decay_max`` (0.9999) after a few ``tau`` (2000) updates. Every
floating-point tensor of the state dict (parameters and buffers such as BatchNorm statistics) is averaged;
integer buffers are copied. A tensor that appears under several keys (modules shared between heads, as
RTMDet-Ins' shared convolutions are) is averaged once per update, not once per key.
"""

from __future__ import annotations

import copy
import math


def ema_decay(updates: int, decay: float = 0.9999, tau: float = 2000.0) -> float:
    """The averaging weight of the old EMA value after ``updates`` optimizer steps (>= 1)."""
    return decay * (1 - math.exp(-updates / tau))


def unwrap(model):
    """The module inside a DistributedDataParallel / DataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


class ModelEMA:
    """A frozen copy of ``model`` in eval mode whose weights follow the model's as an EMA."""

    def __init__(self, model, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        self.ema = copy.deepcopy(unwrap(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay_max = decay
        self.tau = tau
        self.updates = updates

    def update(self, model) -> None:
        import torch

        self.updates += 1
        d = ema_decay(self.updates, self.decay_max, self.tau)
        msd = unwrap(model).state_dict()
        seen: set[int] = set()
        averaged, sources = [], []
        with torch.no_grad():
            for k, v in self.ema.state_dict().items():
                if v.data_ptr() in seen:
                    continue
                seen.add(v.data_ptr())
                src = msd[k].detach()
                if v.dtype.is_floating_point:
                    averaged.append(v)
                    sources.append(src.to(v.dtype))
                else:
                    v.copy_(src)
            if averaged:  # one multi-tensor kernel per op, not two small ops per tensor (same arithmetic)
                torch._foreach_mul_(averaged, d)
                torch._foreach_add_(averaged, sources, alpha=1 - d)

    def state_dict(self) -> dict:
        return {"model": self.ema.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["model"])
        self.updates = int(state["updates"])


__all__ = ["ModelEMA", "ema_decay", "unwrap"]
