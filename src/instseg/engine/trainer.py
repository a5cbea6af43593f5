"""The training loop shared by every architecture trained by instseg itself (native and torchvision).

It only calls the model contract: ``model.forward_train(images, targets) -> {name: scalar loss}`` and
``model.predict(images, score_thr, max_det)``. Per iteration: the schedule sets lr/momentum, the summed loss
is checked for NaN/inf, gradients accumulate over ``accumulate_at`` batches, then unscale -> clip -> step ->
EMA. Pending gradients are applied at the end of every epoch, so an epoch boundary is a clean state and a
resumed run continues exactly like an uninterrupted one. A non-finite loss reloads the state of the last
finished epoch (an in-memory copy), halves the learning rate and redoes the epoch, at most
:data:`MAX_RECOVERIES` times; results.csv counts them (``nan_recoveries``). After every ``val_period``
epochs: validation at original resolution with instseg's evaluator, results.csv, last.pt (atomic), best.pt.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from instseg.contract import TrainResult
from instseg.config import TrainConfig, save_yaml, to_dict
from instseg.engine import distributed as D
from instseg.engine.logger import TrainLogger, fitness_of
from instseg.rundir import RunDir
from instseg.errors import DatasetError, TrainingError


MAX_RECOVERIES = 3
"""Non-finite losses recovered from (reload the last good state, halve the lr) before training stops."""


class NonFiniteLoss(Exception):
    """Raised inside an epoch when the loss is NaN/inf; the loop recovers or stops (TrainingError)."""


def _to_cpu(obj):
    """A deep copy of a (nested) state dict with every tensor cloned to the CPU: the recovery snapshot."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _train_step_module(model):
    """An nn.Module whose forward is ``model.forward_train``: what DDP wraps, so its hooks see the pass."""
    from torch import nn

    class TrainStep(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, images, targets):
            return self.inner.forward_train(images, targets)

    return TrainStep(model)


def compile_in_place(model) -> list[str]:
    """``torch.compile`` the shallowest ``backbone`` and ``neck`` modules of ``model`` in place
    (``nn.Module.compile``: the state_dict keys stay as they are, no ``_orig_mod.``); their input is the fixed
    ``imgsz`` batch, so they compile once, while the heads' target-dependent losses stay eager. Returns the
    compiled module names."""
    done: list[str] = []
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("backbone", "neck") and not any(name.startswith(d + ".") for d in done):
            module.compile()
            done.append(name)
    return done


def _targets_to(targets: list[dict], device) -> list[dict]:
    return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]


class Trainer:
    """One training run. ``Trainer(cfg, run).fit()``; ``run`` None = a new folder (or the resumed one)."""

    def __init__(self, cfg: TrainConfig, run: RunDir | None = None, callbacks=None):
        from instseg.engine import setup as S

        self.callbacks = list(callbacks or [])  # fn(epoch: int (1-based), metrics: dict), main rank, after val

        self.info = D.dist_env()
        self.device = D.select_device(cfg.device, self.info)
        D.init_distributed(self.info, self.device)
        if cfg.resume is not None and run is None:  # cfg comes from setup.resume_config
            run = RunDir(Path(cfg.resume).resolve().parent.parent)
        self.cfg = cfg = S.with_defaults(cfg)
        if run is None:
            run = D.broadcast_object(S.make_run_dir(cfg) if self.info.is_main else None, self.info)
        self.run = run.make() if self.info.is_main else run
        self.log = TrainLogger(self.run.root, [], quiet=cfg.quiet, enabled=self.info.is_main, loggers=cfg.loggers,
                               params=to_dict(cfg))
        S.seed_everything(cfg.seed + self.info.rank, cfg.deterministic)

        from instseg.models.registry import get_architecture

        self.arch = get_architecture(cfg.architecture)
        self.names = S.dataset_names(cfg.data)
        self.train_records = S.load_records(cfg.data, "train", self.log.echo)
        self.val_records = S.load_records(cfg.data, "val", self.log.echo)
        if not self.train_records:
            raise DatasetError(f"{cfg.data}: the train split has no usable images (run `instseg doctor {cfg.data}`)")
        self.model = S.build_for_run(cfg, len(self.names), self.log.echo).to(self.device)
        self._build_loader()
        self._build_optimization()
        if cfg.resume is not None:
            self._load_resume(cfg.resume)
        elif self.info.is_main:
            from instseg.engine.checkpoint import remove_stale_temps

            self.log.csv.reset()  # a fresh run in a reused folder (--exist-ok) starts its own results.csv
            remove_stale_temps(self.run.root)  # and drops what a killed run left half written
        if self.info.is_main:
            from instseg.engine.dataset_fingerprint import fingerprint

            self.data_fingerprint = fingerprint(cfg.data)  # stored in each checkpoint, checked on resume
            save_yaml(cfg, self.run.config_yaml)

    # ---------------------------------------------------------------------------------------------- setup
    def _build_loader(self) -> None:
        import torch

        from instseg.augment.dataset import InstanceSegDataset, collate

        cfg = self.cfg
        self.dataset = InstanceSegDataset(self.train_records, imgsz=cfg.imgsz, mask_stride=self.arch.mask_stride,
                                          augment=cfg.augment, train=True, cache=cfg.cache, seed=cfg.seed)
        self.sampler = torch.utils.data.DistributedSampler(
            self.dataset, num_replicas=self.info.world_size, rank=self.info.rank, shuffle=True, seed=cfg.seed)
        from instseg.engine.threads import loader_workers

        workers = loader_workers(cfg.workers, self.device.type, self.info.world_size)  # engine/threads.py
        self.loader = torch.utils.data.DataLoader(self.dataset, batch_size=cfg.batch, sampler=self.sampler,
                                                  num_workers=workers, collate_fn=collate,
                                                  pin_memory=self.device.type == "cuda",
                                                  persistent_workers=workers > 0)
        self.nb = len(self.loader)

    def _build_optimization(self) -> None:
        import torch

        from instseg.engine.ema import ModelEMA
        from instseg.engine.optim import build_optimizer
        cfg = self.cfg
        self.schedule = self._resolve_schedule(cfg.epochs)
        self.memory_format = torch.contiguous_format
        if cfg.channels_last or (cfg.channels_last is None and self.device.type == "cpu"):
            self.memory_format = torch.channels_last
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, self.schedule)
        self.amp = bool(cfg.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.autocast = {"device_type": self.device.type, "enabled": self.amp}
        if cfg.cpu_amp and self.device.type == "cpu":
            self.autocast = {"device_type": "cpu", "dtype": torch.bfloat16, "enabled": True}
        self.ema = ModelEMA(self.model, decay=self.schedule.ema_decay) if self.schedule.ema else None
        self.step_module = _train_step_module(self.model)
        if cfg.compile:
            compiled = compile_in_place(self.model)
            self.log.echo(f"compile: {', '.join(compiled) or 'no backbone/neck module found'} (torch.compile, "
                          "in place; the first iterations compile)")
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = torch.nn.parallel.DistributedDataParallel(self.step_module, device_ids=ids,
                                                                          find_unused_parameters=True)
        self.start_epoch, self.best_fitness, self.best_epoch = 0, None, -1
        self.recoveries, self.lr_scale = 0, 1.0  # non-finite losses recovered from; lr multiplier after them
        self._good: dict | None = None  # in-memory state of the last finished epoch (see _snapshot)
        # (epoch, metrics) of the best validation of this process; its predictions are in predictions/val.json
        self._best_val: tuple[int, dict] | None = None

    def _resolve_schedule(self, epochs: int):
        from instseg.engine.schedule import resolve_schedule

        cfg = self.cfg
        return resolve_schedule(
            cfg.schedule, architecture=cfg.architecture, default_recipe=self.arch.default_schedule,
            epochs=epochs, nb=self.nb, batch=cfg.batch * self.info.world_size, n_train=len(self.train_records),
            nc=len(self.names), close_mosaic=cfg.augment.close_mosaic, ema=cfg.ema)

    def _load_resume(self, path: Path) -> None:
        from instseg.engine.checkpoint import load_checkpoint, load_weights, set_rng_state

        ckpt = load_checkpoint(path, map_location=str(self.device))
        load_weights(self.model, ckpt["model"], path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None and ckpt.get("ema"):
            self.ema.load_state_dict(ckpt["ema"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = int(ckpt["epoch"]) + 1
        self.best_fitness, self.best_epoch = ckpt.get("best_fitness"), int(ckpt.get("best_epoch", -1))
        self.recoveries, self.lr_scale = int(ckpt.get("nan_recoveries", 0)), float(ckpt.get("lr_scale", 1.0))
        if ckpt.get("rng") and not self.info.enabled:
            set_rng_state(ckpt["rng"])
        self.log.csv.truncate_after(self.start_epoch)
        self.log.echo(f"resuming {path} from epoch {self.start_epoch + 1}/{self.cfg.epochs}")

    # ----------------------------------------------------------------------------------------------- loop
    def fit(self) -> TrainResult:
        stopped_early, epoch = False, self.start_epoch - 1
        self._budget, self._t_fit = self._time_budget(), time.perf_counter()
        try:
            while epoch + 1 < self.cfg.epochs:  # cfg.epochs is re-planned under a time budget (--time)
                epoch += 1
                self._snapshot()
                while True:
                    try:
                        losses, lrs, seconds = self._train_epoch(epoch)
                        break
                    except NonFiniteLoss as e:
                        self._recover(epoch, str(e))
                stopped_early = self._end_epoch(epoch, losses, lrs, seconds)
                if stopped_early:
                    break
                self._replan(epoch)
            metrics = self._final_eval() if self.info.is_main else {}
            D.barrier(self.info)  # all ranks leave together: none tears the process group down under another
        finally:
            self.log.close()
            D.cleanup(self.info)
        best = self.run.best if self.run.best.exists() else None
        return TrainResult(run=self.run, best=best, last=self.run.last, metrics=metrics, epochs_done=epoch + 1,
                           stopped_early=stopped_early)

    def _time_budget(self):
        from instseg.engine.time_budget import TimeBudget

        if self.cfg.time is None:
            return None
        return TimeBudget.for_run(self.cfg.time, self.run.results_csv if self.cfg.resume is not None else None)

    def _out_of_time(self) -> bool:
        """The budget is spent (checked after an optimizer step, so no gradients are pending; not under DDP,
        whose ranks would have to agree at every step)."""
        b = getattr(self, "_budget", None)
        return b is not None and not self.info.enabled and b.elapsed_s >= b.budget_s

    def _replan(self, epoch: int) -> None:
        """Under ``cfg.time``: the epoch count that fits the budget, and the schedule rebuilt for it."""
        from dataclasses import replace

        from instseg.engine.time_budget import reschedule

        if self._budget is None:
            return
        epochs = int(D.broadcast_object(self._budget.plan(epoch + 1) if self.info.is_main else None, self.info))
        if epochs != self.cfg.epochs:
            self.log.echo(f"time budget {self.cfg.time:g} h: {epochs} epochs fit (mean epoch "
                          f"{self._budget.mean_epoch_s:.1f} s, {self._budget.spent_s:.0f} s spent)")
            self.cfg = replace(self.cfg, epochs=epochs)
            self.schedule = reschedule(self.schedule, self._resolve_schedule(epochs))

    def _train_epoch(self, epoch: int) -> tuple[dict, list[float], float]:
        import torch

        from instseg.engine.optim import apply_schedule

        s, nb = self.schedule, self.nb
        self.dataset.set_epoch(epoch)
        if s.close_mosaic and epoch >= s.epochs - s.close_mosaic:
            self.dataset.close_mosaic()
        self.sampler.set_epoch(epoch)
        self.model.train()
        sums: dict[str, float] = {}
        last_opt = epoch * nb - 1
        t0, n_images = time.time(), 0
        bar = self.log.progress(self.loader, nb, f"epoch {epoch + 1}/{self.cfg.epochs}")
        for i, (images, targets, _metas) in enumerate(bar):
            ni = epoch * nb + i
            accumulate = apply_schedule(self.optimizer, s, ni)
            if self.lr_scale != 1.0:
                for group in self.optimizer.param_groups:
                    group["lr"] *= self.lr_scale
            images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            with torch.autocast(**self.autocast):
                loss_dict = self.step_module(images, _targets_to(targets, self.device))
            loss = sum(loss_dict.values())
            self._check_finite(loss, loss_dict, epoch, i, ni)
            self.scaler.scale(loss).backward()
            if ni - last_opt >= accumulate or i == nb - 1:
                self._optimizer_step()
                last_opt = ni
            for k, v in loss_dict.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            self.log.scalar("iter/loss", float(loss.detach()), ni)
            n_images += images.shape[0]
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{sums['loss'] / (i + 1):.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.3g}",
                                ips=f"{n_images / max(time.time() - t0, 1e-9):.1f}")
            if last_opt == ni and self._out_of_time():  # --time ran out inside the epoch: Ultralytics' timed stop
                break
        keys = list(sums)
        means = D.all_reduce_mean([sums[k] / (i + 1) for k in keys], self.info)
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        return dict(zip(keys, means)), lrs, time.time() - t0

    def _check_finite(self, loss, loss_dict: dict, epoch: int, i: int, ni: int) -> None:
        finite = math.isfinite(float(loss.detach()))
        if self.info.enabled:  # every rank leaves the epoch together, or none does
            finite = D.all_reduce_mean([0.0 if finite else 1.0], self.info)[0] == 0.0
        if finite:
            return
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in loss_dict.items())
        raise NonFiniteLoss(f"loss is {float(loss.detach())} at epoch {epoch + 1}, iteration {i} (global {ni}): "
                            f"{terms}")

    def _snapshot(self) -> None:
        """Keep the state at the start of an epoch (= the end of the last good one) in CPU memory."""
        self._good = {"model": _to_cpu(self.model.state_dict()), "optimizer": _to_cpu(self.optimizer.state_dict()),
                      "ema": _to_cpu(self.ema.state_dict()) if self.ema is not None else None,
                      "scaler": self.scaler.state_dict()}

    def _recover(self, epoch: int, what: str) -> None:
        """After a non-finite loss: reload the snapshot, halve the lr and let the loop redo ``epoch``; after
        MAX_RECOVERIES, stop with TrainingError (last.pt, the last good epoch, stays)."""
        if self.recoveries >= MAX_RECOVERIES or self._good is None:
            keep = f"; the last good checkpoint is {self.run.last}" if self.run.last.exists() else ""
            raise TrainingError(f"{what}. Still not finite after {self.recoveries} recoveries (reload + lr x0.5). "
                                f"Lower the learning rate (--lr), check the labels (`instseg doctor`) or add "
                                f"gradient clipping (clip_grad=10){keep}")
        self.model.load_state_dict(self._good["model"])
        self.optimizer.load_state_dict(self._good["optimizer"])
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.load_state_dict(self._good["ema"])
        self.scaler.load_state_dict(self._good["scaler"])
        self.recoveries += 1
        self.lr_scale *= 0.5
        start = "the start of training" if epoch == 0 else f"the end of epoch {epoch}"
        self.log.echo(f"warning: {what}; recovery {self.recoveries}/{MAX_RECOVERIES}: reloaded the weights and "
                      f"optimizer state of {start}, learning rate x{self.lr_scale:g} from now on, redoing epoch "
                      f"{epoch + 1}")

    def _optimizer_step(self) -> None:
        import torch

        if self.schedule.clip_grad:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.schedule.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)

    # ---------------------------------------------------------------------------------- epoch end / eval
    def eval_model(self):
        return self.ema.ema if self.ema is not None else self.model

    def _val_ground_truth(self) -> tuple[dict, list]:
        """The COCO ground truth of the val split and its records with image ids: built once per run."""
        from instseg.engine.validate import ground_truth

        if getattr(self, "_val_gt", None) is None:
            self._val_gt = ground_truth(self.val_records, self.names)
        return self._val_gt

    def _val_workers(self) -> int:
        from instseg.engine.threads import loader_workers

        return loader_workers(self.cfg.workers, self.device.type)  # validation runs on the main rank alone

    def _validate(self, model) -> tuple[dict, list]:
        from instseg.engine.validate import validate

        if not self.val_records:
            return {}, []
        gt, records = self._val_ground_truth()
        t0 = time.perf_counter()
        metrics, _m, results = validate(model, records, self.names, imgsz=self.cfg.imgsz,
                                        mask_stride=self.arch.mask_stride, batch=self.cfg.batch, device=self.device,
                                        conf=self.cfg.val_conf, max_det=self.cfg.max_det, gt=gt,
                                        workers=self._val_workers())
        self._val_seconds = time.perf_counter() - t0
        return metrics, results

    def _end_epoch(self, epoch: int, losses: dict, lrs: list[float], seconds: float) -> bool:
        cfg = self.cfg
        final = epoch + 1 >= cfg.epochs
        stop = False
        if self.info.is_main:
            metrics: dict = {}
            self._val_seconds = None
            if (epoch + 1) % max(cfg.val_period, 1) == 0 or final:
                metrics, results = self._validate(self.eval_model())
            row = {"epoch": epoch + 1, "epochs": cfg.epochs, "time": seconds, "time/val": self._val_seconds,
                   "train/loss": losses.pop("loss", None),
                   "nan_recoveries": self.recoveries,
                   **{f"lr/pg{k}": v for k, v in enumerate(lrs)}, **{f"train/{k}": v for k, v in losses.items()}}
            self.log.set_loss_names(list(losses))
            improved = False
            if metrics:
                fit = fitness_of(metrics, cfg.best_metric)
                row.update({f"metrics/{k}": metrics.get(k) for k in ("segm_mAP", "segm_mAP50", "segm_mAP75",
                                                                     "bbox_mAP", "bbox_mAP50", "bbox_mAP75")})
                row["metrics/fitness"] = fit
                improved = self.best_fitness is None or fit > self.best_fitness
                if improved:
                    self.best_fitness, self.best_epoch = fit, epoch
            self.log.log_epoch(row, epoch + 1)
            self._save(epoch, best=improved)
            if improved:  # best.pt's predictions, written once: the final scoring need not validate it again
                from instseg.evaluation import write_results_json

                write_results_json(self.run.val_predictions, results)
                self._best_val = (epoch, metrics)
            for fn in self.callbacks:  # row (results.csv columns) + the evaluator's bare names (segm_mAP, ...)
                fn(epoch + 1, {**row, **metrics})
            if cfg.patience and metrics and epoch - self.best_epoch >= cfg.patience:
                self.log.echo(f"early stop: no improvement of {cfg.best_metric} for {cfg.patience} epochs "
                              f"(best {self.best_fitness:.4f} at epoch {self.best_epoch + 1})")
                stop = True
        return bool(D.broadcast_object(stop, self.info))

    def _checkpoint(self, epoch: int, full: bool) -> dict:
        import instseg
        from instseg.engine.checkpoint import rng_state
        from instseg.engine.ema import unwrap

        return {
            "model": unwrap(self.model).state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict() if full else None,
            "scaler": self.scaler.state_dict() if full else None,
            "rng": rng_state() if full else None,
            "epoch": epoch, "best_fitness": self.best_fitness, "best_epoch": self.best_epoch,
            "nan_recoveries": self.recoveries, "lr_scale": self.lr_scale,
            "architecture": self.cfg.architecture, "size": self.cfg.model, "names": list(self.names),
            "imgsz": self.cfg.imgsz, "mask_stride": self.arch.mask_stride, "config": to_dict(self.cfg),
            "schedule": to_dict(self.schedule), "instseg_version": getattr(instseg, "__version__", "0"),
            "data_fingerprint": getattr(self, "data_fingerprint", None),
        }

    def _save(self, epoch: int, best: bool) -> None:
        from instseg.engine.checkpoint import save_checkpoint

        if best:  # best first: a failure (full disk) between the two never leaves last.pt ahead of best.pt
            save_checkpoint(self.run.best, self._checkpoint(epoch, full=False))
        save_checkpoint(self.run.last, self._checkpoint(epoch, full=True))

    def _final_eval(self) -> dict:
        """Score best.pt (else the last weights) on val: metrics.json and predictions/val.json."""
        import copy

        from instseg.data.coco import write_json_atomic
        from instseg.engine.checkpoint import load_checkpoint, model_state
        from instseg.evaluation import write_results_json

        if not self.val_records:
            self.log.echo("no val split: metrics.json and predictions/val.json not written")
            return {}
        timing = {"train_s": time.perf_counter() - self._t_fit}  # the loop with its validations, as Ultralytics'
        source = self.run.best if self.run.best.exists() else self.run.last
        results = None
        if (self._best_val is not None and self._best_val[0] == self.best_epoch and source == self.run.best
                and self.run.val_predictions.exists()):
            metrics = self._best_val[1]  # best.pt holds exactly the weights of that pass; its predictions are written
        else:
            model = copy.deepcopy(self.eval_model())
            model.load_state_dict(model_state(load_checkpoint(source, map_location=str(self.device))))
            metrics, results = self._validate(model)
        from instseg.evaluation.gt_hash import add_gt_sha256

        gt, _ = self._val_ground_truth()  # the GT validate() scored on, for compare's check
        write_json_atomic(self.run.metrics_json, add_gt_sha256({**_json_safe(metrics), "weights": str(source),
                                                                 "timing": timing}, gt))
        if results is not None:
            write_results_json(self.run.val_predictions, results)
        self.log.echo(f"{source.name}: segm mAP50-95 {metrics.get('segm_mAP', float('nan')):.4f}  "
                      f"mAP50 {metrics.get('segm_mAP50', float('nan')):.4f}  box mAP {metrics.get('bbox_mAP', float('nan')):.4f}"
                      f"\nrun folder: {self.run.root}")
        return metrics


def _json_safe(d: dict) -> dict:
    def conv(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in d.items()}


def train(cfg: TrainConfig, run: RunDir | None = None, callbacks=None) -> TrainResult:
    """Train ``cfg`` (a new run, or ``cfg.resume``) and return what was written; ``callbacks``: see Trainer."""
    return Trainer(cfg, run, callbacks).fit()


__all__ = ["Trainer", "train"]
