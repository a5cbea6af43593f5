"""Ultralytics' own segmentation trainer, with instseg's run-folder conventions added, nothing else changed.

This module imports Ultralytics at import time: import it only from inside
``instseg.backends.ultralytics.train``, after ``configure_offline()``.

What the subclass changes (all bookkeeping, the training itself is Ultralytics' to the line):

* Ultralytics' CSV is written as ``ultralytics_results.csv``; ``results.csv`` gets instseg's columns
  (:func:`instseg.backends.ultralytics_args.instseg_results_row`), ``time`` the seconds of each epoch's
  training and ``time/val`` of its validation, as the native trainer writes them.
* best.pt and early stopping follow instseg's ``best_metric`` (a key of Ultralytics' validation metrics,
  see ``FITNESS_KEYS``) instead of Ultralytics' fitness when the user asked for another metric.
* No second Ultralytics validation of best.pt after training when its epoch was validated in this process
  (instseg's evaluator scores best.pt next; Ultralytics' numbers of that epoch go to metrics.json).
* Every process (DDP workers included) switches Ultralytics' network features off before it reads data.
"""

from __future__ import annotations

import time

from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.utils import DEFAULT_CFG

from instseg.backends.ultralytics_args import instseg_results_row
from instseg.engine.logger import ResultsCSV

ULTRALYTICS_CSV = "ultralytics_results.csv"
INSTSEG_CSV = "results.csv"


class InstsegSegmentationTrainer(SegmentationTrainer):
    """SegmentationTrainer writing instseg's results.csv and choosing best.pt by ``fitness_key``."""

    fitness_key: str = "fitness"  # a key of the validator's metrics dict; 'fitness' = Ultralytics' own

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None):
        from instseg.backends.ultralytics import configure_offline

        configure_offline()  # also in DDP workers, which build the trainer in a fresh process
        super().__init__(cfg, overrides, _callbacks)
        self.csv = self.save_dir / ULTRALYTICS_CSV
        self.instseg_csv = self.save_dir / INSTSEG_CSV
        if not self.args.resume:
            for path in (self.csv, self.instseg_csv):
                if path.exists():
                    path.unlink()
        self._map75: dict[str, float] = {}
        self._val_s: float | None = None  # seconds of this epoch's validation
        self._row_mark: float | None = None  # time.time() of the previous results.csv row of this process
        self._best_metrics: dict | None = None  # Ultralytics' validation numbers of best.pt, in this process

    def validate(self):
        t0 = time.perf_counter()
        try:
            return self._validate_by_key()
        finally:
            self._val_s = time.perf_counter() - t0

    def _validate_by_key(self):
        metrics, fitness = self._validate_by_key_unrecorded()
        if metrics is not None and fitness is not None and self.best_fitness == fitness:  # best.pt is this epoch's
            self._best_metrics = {k: v for k, v in metrics.items() if k != "fitness"}
        return metrics, fitness

    def _validate_by_key_unrecorded(self):
        previous_best = self.best_fitness
        metrics, fitness = super().validate()
        if metrics is None:
            return metrics, fitness
        m = getattr(self.validator, "metrics", None)
        if m is not None and hasattr(m, "seg"):
            self._map75 = {"segm_mAP75": float(m.seg.map75), "bbox_mAP75": float(m.box.map75)}
        if self.fitness_key != "fitness":
            fitness = float(metrics[self.fitness_key])
            if previous_best is None or previous_best < fitness:
                self.best_fitness = fitness
            else:
                self.best_fitness = previous_best
        return metrics, fitness

    def final_eval(self):
        """Ultralytics validates best.pt once more here; instseg scores best.pt with its own evaluator right
        after training, so when best.pt's epoch was validated in this process its numbers are reported instead
        of a second pass (the checkpoints are stripped of their optimizer as Ultralytics does)."""
        if self._best_metrics is None:  # a resumed run whose best epoch came before: Ultralytics' own final pass
            return super().final_eval()
        from ultralytics.engine import trainer as ultralytics_trainer

        with ultralytics_trainer.torch_distributed_zero_first(ultralytics_trainer.LOCAL_RANK):
            if ultralytics_trainer.RANK in {-1, 0}:
                ckpt = ultralytics_trainer.strip_optimizer(self.last) if self.last.exists() else {}
                if self.best.exists():
                    ultralytics_trainer.strip_optimizer(self.best, updates={"train_results": ckpt.get("train_results")})
        self.metrics = dict(self._best_metrics)

    def save_metrics(self, metrics):
        super().save_metrics(metrics)
        now = time.time()  # results.csv 'time': seconds of this epoch's training alone (Ultralytics' is cumulative)
        start = max(self._row_mark or 0.0, self.train_time_start)
        val_s, self._val_s, self._row_mark = self._val_s, None, now
        row = instseg_results_row(self.epoch + 1, max(now - start - (val_s or 0.0), 0.0), metrics, self._map75,
                                  val_seconds=val_s)
        loss_names = [k.split("/", 1)[1] for k in metrics if k.startswith("train/")]
        ResultsCSV(self.instseg_csv, loss_names).append(row)


def make_trainer_class(fitness_key: str) -> type:
    """A trainer class whose best.pt follows ``fitness_key``. Built with ``type`` so that Ultralytics' DDP
    launcher (cloudpickle) carries the key into its worker processes by value."""
    if fitness_key == "fitness":
        return InstsegSegmentationTrainer
    return type("InstsegSegmentationTrainerBy", (InstsegSegmentationTrainer,), {"fitness_key": fitness_key})
