"""Training to a wall-time budget (``TrainConfig.time``, hours) instead of a fixed epoch count.

What Ultralytics' ``time=`` does, for the engine: the run starts with ``epochs`` as its plan; after every
epoch the trainer asks :meth:`TimeBudget.plan` how many epochs fit, from the mean wall time of the epochs
run so far (training, validation and checkpoints included), and rebuilds its schedule for that count
(:func:`reschedule`). The schedule is a pure function of (iteration, epoch count), so the re-planned one
still warms up, decays and closes mosaic relative to the *planned* last epoch: the lr ends on its final
value when the budget ends, instead of being cut off mid-decay.

One difference from Ultralytics, on purpose: Ultralytics plans ``ceil(budget / mean epoch)`` epochs and
breaks out of the last one mid-way when the clock runs out; the engine plans ``floor`` of the time that is
left, so it does not start an epoch it cannot finish and the schedule completes (a run ends at most one mean
epoch before its budget). Like Ultralytics, the trainer also stops inside an epoch, after an optimizer step,
once the budget is spent: what happens when even the first epoch is longer than the budget (then the
schedule cannot finish; the time limit wins). The final evaluation of best.pt comes after the budget, as in
Ultralytics.

A resumed run counts the epochs it already trained (the ``time`` column of results.csv, training seconds)
against the budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

from instseg.engine.schedule import ResolvedSchedule


def planned_epochs(budget_s: float, spent_s: float, mean_epoch_s: float, epochs_done: int) -> int:
    """The run's total epoch count: the ``epochs_done`` plus as many whole epochs of ``mean_epoch_s`` as fit
    in the ``budget_s - spent_s`` seconds left (at least ``epochs_done``; ``epochs_done`` = stop now)."""
    if mean_epoch_s <= 0:
        return epochs_done + 1
    more = math.floor(max(budget_s - spent_s, 0.0) / mean_epoch_s + 1e-9)
    return epochs_done + more


def reschedule(old: ResolvedSchedule, new: ResolvedSchedule) -> ResolvedSchedule:
    """``new`` (the recipe resolved again for the re-planned epoch count) with what was fixed when the
    optimizer was built kept from ``old``: optimizer (``auto`` would otherwise re-pick from the new iteration
    count), peak lr, momentum, weight decay and nominal accumulation. Warmup length, decay, milestones and
    close-mosaic follow the new count, as Ultralytics' re-planned scheduler does."""
    return replace(new, optimizer=old.optimizer, lr0=old.lr0, momentum=old.momentum,
                   weight_decay=old.weight_decay, nesterov=old.nesterov, warmup_bias_lr=old.warmup_bias_lr,
                   accumulate=old.accumulate)


class TimeBudget:
    """The wall clock of one training process against ``hours``. Call :meth:`plan` once per finished epoch."""

    def __init__(self, hours: float, *, spent_s: float = 0.0, clock=None):
        self.budget_s = float(hours) * 3600.0
        self.spent_before = float(spent_s)
        self.clock = clock or time.monotonic
        self.t0 = self.clock()
        self.epochs_here = 0
        self.mean_epoch_s = 0.0
        self.spent_s = self.spent_before  # at the last plan()

    @classmethod
    def for_run(cls, hours: float, results_csv: Path | None = None) -> "TimeBudget":
        """A budget that counts the training seconds already in ``results_csv`` (a resumed run)."""
        spent = 0.0
        if results_csv is not None and Path(results_csv).is_file():
            from instseg.engine.logger import read_results

            spent = sum(float(r["time"]) for r in read_results(Path(results_csv)) if r.get("time") not in (None, ""))
        return cls(hours, spent_s=spent)

    @property
    def elapsed_s(self) -> float:
        return self.spent_before + self.clock() - self.t0

    def plan(self, epochs_done: int) -> int:
        """The run's epoch total after ``epochs_done`` epochs (all of the run's, earlier processes too)."""
        self.epochs_here += 1
        here = self.clock() - self.t0
        self.mean_epoch_s = here / self.epochs_here
        self.spent_s = self.spent_before + here
        return planned_epochs(self.budget_s, self.spent_s, self.mean_epoch_s, epochs_done)


__all__ = ["TimeBudget", "planned_epochs", "reschedule"]
