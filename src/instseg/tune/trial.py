"""One trial of ``instseg tune``: the base config + the sampled values, trained by ``instseg.api.train``
into an ordinary run folder ``<experiment>/<trial id>`` (config.yaml, results.csv, weights, metrics.json), with
every epoch's validation reported to Ray Tune (what ASHA stops on).

This runs inside a Ray worker process: everything it needs comes in ``search`` (plain, picklable data).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

REPORTED = ("segm_mAP", "segm_mAP50", "segm_mAP75", "bbox_mAP", "bbox_mAP50", "fitness")


def epoch_report(epoch: int, metrics: dict) -> dict:
    """What a trial reports for one epoch: ``epoch`` (ASHA's time attribute), the evaluator's numbers and
    the mean training loss (``train_loss``); NaN (no detections scored) stays NaN."""
    out = {"epoch": int(epoch)}
    for k in REPORTED:
        v = metrics.get(k, metrics.get(f"metrics/{k}"))
        if v is not None:
            out[k] = float(v)
    loss = metrics.get("train/loss")
    if loss is not None:
        out["train_loss"] = float(loss)
    return out


def trial_config(search: dict, sample: dict, trial_id: str):
    """The TrainConfig of one trial: base + sample, run folder ``<experiment>/<trial_id>``."""
    from instseg.config import TrainConfig, from_dict
    from instseg.tune.space import Dist, apply_sample

    base = from_dict(TrainConfig, search["base"])
    dists = [Dist(k, kind, tuple(args)) for k, kind, args in search["dists"]]
    cfg = apply_sample(base, dists, sample)
    return replace(cfg, project=Path(search["experiment"]), name=trial_id, exist_ok=True, quiet=True)


def run_trial(config: dict, search: dict) -> None:
    """Ray Tune's function trainable. Every epoch but the last reports the engine's (or Ultralytics')
    validation; the last report is the run's final score by instseg's evaluator (metrics.json), so every
    architecture is ranked by the same evaluator."""
    import shutil

    from ray import tune

    from instseg import api

    trial_id = tune.get_context().get_trial_id()
    cfg = trial_config(search, config, trial_id)
    if search.get("gpus_per_trial"):
        cfg = replace(cfg, device="0")  # Ray sets CUDA_VISIBLE_DEVICES to this trial's GPU(s)
    elif not cfg.device:
        cfg = replace(cfg, device="cpu")
    folder = Path(cfg.project) / trial_id
    if folder.exists():  # a trial restarted from scratch (resume): its partial run goes
        shutil.rmtree(folder)
    extra = {"run": str(folder)}
    last: dict = {}

    def report(epoch: int, metrics: dict) -> None:
        last.clear()
        last.update(epoch_report(epoch, metrics))
        if epoch < cfg.epochs and search["metric"] in last:
            tune.report({**last, **extra})

    result = api.train(cfg, callbacks=[report])
    final = {**last, **epoch_report(result.epochs_done, {k: v for k, v in (result.metrics or {}).items()
                                              if isinstance(v, (int, float)) and not isinstance(v, bool)})}
    final.setdefault(search["metric"], math.nan)
    tune.report({**final, **extra, "final": True})


__all__ = ["run_trial", "trial_config", "epoch_report", "REPORTED"]
