"""The Ultralytics backend: YOLO11-seg and YOLO26-seg trained by Ultralytics' own trainer, scored by instseg.

Ultralytics is an optional extra (``pip install 'instseg[yolo]'``, AGPL-3.0) and is imported only inside
the functions below. The flow of :func:`train`:

1. instseg's dataset checks (the same report as every architecture; a FATAL finding stops the run);
2. :func:`configure_offline` (no update check, analytics, font or weight download, pip auto-install);
3. Ultralytics' ``model.train`` with the arguments of :func:`resolve_ultralytics_args`, writing into
   instseg's run folder (weights/best.pt and last.pt are Ultralytics' checkpoints, as they are);
4. :func:`predict` on the val split with best.pt at the original resolution (conf = ``val_conf``,
   retina masks), COCO RLE results in ``predictions/val.json``, scored by instseg's evaluator;
5. ``metrics.json``: instseg's COCO numbers plus Ultralytics' own, labelled, with why they differ.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import Sequence

from instseg.contract import PredictConfig, TrainResult
from instseg.backends.ultralytics_args import FITNESS_KEYS, default_size, model_stem, resolve_ultralytics_args
from instseg.config import ConfigError, TrainConfig, save_yaml
from instseg.rundir import RunDir
from instseg.errors import BackendUnavailable, DatasetError, TrainingError, WeightsError
from instseg.structures import ImagePrediction

log = logging.getLogger("instseg.backends.ultralytics")

INSTALL_HINT = "ultralytics is not installed: pip install 'instseg[yolo]'"
PRETRAINED_URL = "https://github.com/ultralytics/assets/releases/download/{release}/{stem}.pt"
PRETRAINED_RELEASE = {"yolo11": "v8.3.0", "yolo26": "v8.4.0"}
METRICS_NOTE = (
    "segm_*/bbox_* come from instseg's COCO evaluator (pycocotools-equal: masks at the original image size, "
    "mean precision at 101 recall points, score-ordered matching with crowd and area ranges, maxDets 100); "
    "ultralytics_metrics come from Ultralytics' validator on the same best.pt (trapezoid integral of the "
    "101-point interpolated curve, its own IoU-first matching without crowd handling, masks compared at 1/4 "
    "of the letterboxed imgsz, up to max_det detections), so the two differ by up to a few points.")


def available() -> str | None:
    """None when Ultralytics can be imported, else why not with the install command (imports nothing)."""
    return None if importlib.util.find_spec("ultralytics") is not None else INSTALL_HINT


def is_ultralytics_checkpoint(path: str | Path) -> bool:
    """True when ``path`` is a torch zip checkpoint that pickles Ultralytics model classes (its own .pt
    format). Reads the archive's pickle bytes only: nothing is unpickled and Ultralytics is not imported."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
            return pkl is not None and b"ultralytics.nn." in z.read(pkl)
    except (OSError, zipfile.BadZipFile):
        return False


def _require() -> None:
    why = available()
    if why is not None:
        raise BackendUnavailable(why)


def _local_font(font: str = "Arial.ttf"):
    """Ultralytics' check_font without the download: a local copy of ``font`` or None (PIL's default)."""
    from ultralytics.utils import USER_CONFIG_DIR

    local = USER_CONFIG_DIR / Path(font).name
    if local.exists():
        return local
    from matplotlib import font_manager

    matches = [f.fname for f in font_manager.fontManager.ttflist
               if font in f.fname and os.path.exists(f.fname)]
    return matches[0] if matches else None


def _offline_check_amp(model):
    """Ultralytics' AMP check, minus its download of yolo26n.pt: without the file it assumes AMP works,
    which is what Ultralytics itself concludes when that download fails offline."""
    import torch
    from ultralytics.engine import trainer as trainer_module
    from ultralytics.utils import WEIGHTS_DIR

    device = next(model.parameters()).device
    if device.type in ("cpu", "mps") or (WEIGHTS_DIR / "yolo26n.pt").is_file():
        return trainer_module._instseg_original_check_amp(model)
    log.warning("AMP check skipped: %s is not on disk and instseg does not download it; AMP stays %s",
                WEIGHTS_DIR / "yolo26n.pt", "on" if torch.cuda.is_available() else "off")
    return True


def configure_offline(quiet: bool | None = None) -> None:
    """Make Ultralytics network-free, at call time, in this process; ``quiet`` True/False sets its logger
    to warnings only / back to its own level (progress bars follow), None leaves it as it is.

    Sets ``YOLO_OFFLINE=1`` (its online probe then answers False: no update check, analytics or Sentry),
    ``YOLO_AUTOINSTALL=False`` (no pip installs), then imports Ultralytics and replaces the two calls that
    would still reach the network: the font download of its dataset check / plots, and the AMP check's
    weight download. Environment variables are inherited by Ultralytics' DDP workers, which call this too.
    """
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    import ultralytics.utils as uu
    from ultralytics.data import utils as data_utils
    from ultralytics.engine import trainer as trainer_module
    from ultralytics.utils import checks, events, plotting

    for module in (uu, checks, events):
        module.ONLINE = False
    events.events.enabled = False
    data_utils.check_font = _local_font
    plotting.check_font = _local_font
    if not hasattr(trainer_module, "_instseg_original_check_amp"):
        trainer_module._instseg_original_check_amp = trainer_module.check_amp
        trainer_module.check_amp = _offline_check_amp
    if not hasattr(uu, "_instseg_logger_level"):
        uu._instseg_logger_level = uu.LOGGER.level
    if quiet is not None:
        uu.LOGGER.setLevel(logging.WARNING if quiet else uu._instseg_logger_level)


def pretrained_path(stem: str) -> Path:
    """The upstream ``<stem>.pt`` from torch.hub's cache, Ultralytics' weights dir or the current folder;
    downloaded into torch.hub's cache when missing. Offline, WeightsError says which file to put where."""
    configure_offline()
    import torch
    from ultralytics.utils import SETTINGS

    hub = Path(torch.hub.get_dir()) / "checkpoints" / f"{stem}.pt"
    for candidate in (hub, Path(SETTINGS["weights_dir"]) / f"{stem}.pt", Path.cwd() / f"{stem}.pt"):
        if candidate.is_file():
            return candidate
    url = PRETRAINED_URL.format(release=PRETRAINED_RELEASE[stem[:6]], stem=stem)
    try:
        hub.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(hub), progress=False)
    except Exception as e:  # offline, proxy, HTTP error: all end the same way for the user
        raise WeightsError(f"pretrained weights {stem}.pt are not on disk and could not be downloaded "
                           f"({type(e).__name__}: {e}). Download {url} and put it at {hub}, or pass "
                           f"--weights path/to/{stem}.pt") from e
    return hub


def model_source(cfg: TrainConfig) -> str:
    """What Ultralytics builds the model from: --weights, the upstream .pt (--pretrained) or the YAML."""
    stem = model_stem(cfg.architecture, default_size(cfg))
    if cfg.weights is not None:
        if not Path(cfg.weights).is_file():
            raise WeightsError(f"--weights {cfg.weights}: file not found")
        return str(cfg.weights)
    if cfg.pretrained:
        return str(pretrained_path(stem))
    return f"{stem}.yaml"


def load_yolo(source: str | Path):
    """``ultralytics.YOLO(source)`` with a clear WeightsError for a file that is not an Ultralytics model.

    Ultralytics' ``.pt`` files are full pickles (its own format) and Ultralytics unpickles them itself: only
    pass weights you trust."""
    from ultralytics import YOLO

    try:
        return YOLO(str(source), task="segment")
    except Exception as e:
        raise WeightsError(f"{source}: cannot be loaded as an Ultralytics segmentation model "
                           f"({type(e).__name__}: {e}); pass a YOLO-seg .pt written by Ultralytics") from e


def describe_weights(weights: str | Path) -> dict:
    """What instseg needs to know about an Ultralytics segmentation .pt: {"architecture" ('yolo11-seg' /
    'yolo26-seg', or None for another family), "size" ('n'...'x' or None), "names" (0-based list),
    "imgsz" (training size or None)}. Loads the file through Ultralytics (its own pickle format)."""
    import re

    configure_offline()
    model = load_yolo(weights)
    yaml_file = str(model.model.yaml.get("yaml_file", ""))
    match = re.match(r"yolo(11|26)([nsmlx])?-seg", Path(yaml_file).name)
    names = model.names
    return {"architecture": f"yolo{match.group(1)}-seg" if match else None,
            "size": (match.group(2) or model.model.yaml.get("scale")) if match else None,
            "names": [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names),
            "imgsz": model.overrides.get("imgsz")}


def check_dataset(data: Path) -> dict:
    """instseg's checks of the train and val splits; FATAL findings raise DatasetError. Returns
    {"train": records, "val": records, "names": names, "findings": [str, ...]}."""
    from instseg.data.checks import load_split
    from instseg.data.types import Severity
    from instseg.data.yaml_config import load_data_yaml

    data = Path(data)
    if data.suffix.lower() == ".json":
        raise DatasetError(f"{data}: the Ultralytics backend reads YOLO data; convert the COCO JSON first "
                           f"(instseg convert coco2yolo --coco {data} --images <dir> --out <dir>) and pass "
                           "the data.yaml it writes")
    spec = load_data_yaml(data)
    out: dict = {"names": spec.names, "findings": []}
    for split in ("train", "val"):
        if split not in spec.split_sources:
            raise DatasetError(f"{data}: no '{split}' key; Ultralytics needs train and val splits")
        records, findings = load_split(spec, split)
        fatal = [f for f in findings if f.severity == Severity.FATAL]
        if fatal:
            listed = "\n  ".join(str(f) for f in fatal[:10])
            raise DatasetError(f"{data}: the {split} split cannot be used:\n  {listed}")
        out[split] = records
        out["findings"].extend(str(f) for f in findings if f.severity in (Severity.WARNING, Severity.ERROR))
    for line in out["findings"][:20]:
        log.warning("%s", line)
    return out


def _ultralytics_summary(metrics: dict | None) -> dict:
    """Ultralytics' final validation numbers under plain names (fractions in [0, 1])."""
    names = {"metrics/mAP50-95(M)": "mask_mAP50-95", "metrics/mAP50(M)": "mask_mAP50",
             "metrics/mAP50-95(B)": "box_mAP50-95", "metrics/mAP50(B)": "box_mAP50",
             "metrics/precision(M)": "mask_precision", "metrics/recall(M)": "mask_recall"}
    metrics = metrics or {}
    return {short: float(metrics[key]) for key, short in names.items() if key in metrics}


def train(cfg: TrainConfig, run: RunDir, callbacks=None) -> TrainResult:
    """Train with Ultralytics into ``run``, then score best.pt on the val split with instseg's evaluator.
    ``callbacks``: ``fn(epoch, metrics)`` from Ultralytics' ``on_fit_epoch_end`` (its own validator's numbers
    under instseg's names; the final score is instseg's evaluator, in the result)."""
    _require()
    if cfg.data is None:
        raise ConfigError("data is not set: pass --data path/to/data.yaml")
    args = resolve_ultralytics_args(cfg, run.root)
    if cfg.dry_run:
        print("Ultralytics train arguments:\n" + "\n".join(f"  {k}: {v!r}" for k, v in args.items()))
        return TrainResult(run=run, best=None, last=None, metrics={"ultralytics_args": args})
    timing: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    dataset = check_dataset(Path(cfg.data))
    timing.update(dataset_check_s=time.perf_counter() - t0, dataset_check_cpu_s=time.process_time() - c0)

    run.make()
    save_yaml(cfg, run.config_yaml)
    configure_offline(cfg.quiet)
    from instseg.backends.ultralytics_trainer import make_trainer_class

    t0 = time.perf_counter()
    if cfg.resume is not None:  # Ultralytics' own resume: its checkpoint holds the run's arguments
        model = load_yolo(cfg.resume)
        args = {"resume": str(cfg.resume), **{k: args[k] for k in RESUME_OVERRIDES if k in args}}
    else:
        model = load_yolo(model_source(cfg))
    from ultralytics.utils import SETTINGS

    from instseg.engine.loggers import scoped_setting

    for fn in callbacks or []:
        model.add_callback("on_fit_epoch_end", _per_epoch(fn))

    try:
        # this run only, not saved; MLflow and W&B get results.csv replayed by instseg (no ./mlruns from here)
        with scoped_setting(SETTINGS, "tensorboard", "tensorboard" in cfg.loggers), \
                scoped_setting(SETTINGS, "mlflow", False), scoped_setting(SETTINGS, "wandb", False):
            model.train(trainer=make_trainer_class(FITNESS_KEYS[cfg.best_metric]), **args)
    except (FileNotFoundError, RuntimeError, ValueError, AssertionError, SyntaxError) as e:
        log.debug("Ultralytics training failed", exc_info=True)
        raise TrainingError(f"Ultralytics training on {cfg.data} failed: {type(e).__name__}: {e} (run folder "
                            f"{run.root}; weights/last.pt is kept when an epoch finished)") from e
    timing["train_s"] = time.perf_counter() - t0
    run.make()
    save_yaml(cfg, run.config_yaml)  # Ultralytics' DDP launcher empties the folder before it starts
    trainer = model.trainer
    final = getattr(trainer, "metrics", None) if trainer is not None else None
    if not final and getattr(model, "ckpt", None):
        final = model.ckpt.get("train_metrics")
    best = run.best if run.best.is_file() else run.last

    t0, c0 = time.perf_counter(), time.process_time()
    pcfg = PredictConfig(imgsz=cfg.imgsz or args.get("imgsz"), conf=cfg.val_conf, iou=0.7, max_det=cfg.max_det,
                         device=cfg.device, batch=8)  # iou 0.7: Ultralytics' validation NMS
    metrics = evaluate_split(best, dataset["val"], dataset["names"], pcfg, run.val_predictions)
    timing.update(coco_eval_s=time.perf_counter() - t0, coco_eval_cpu_s=time.process_time() - c0)
    epochs_done = _count_rows(run.results_csv)
    metrics.update(ultralytics_metrics=_ultralytics_summary(final), note=METRICS_NOTE, timing=timing,
                   architecture=cfg.architecture, size=default_size(cfg), weights=str(best),
                   epochs=epochs_done)
    from instseg.data.coco import write_json_atomic

    write_json_atomic(run.metrics_json, metrics)
    return TrainResult(run=run, best=run.best if run.best.is_file() else None,
                       last=run.last if run.last.is_file() else None, metrics=metrics,
                       epochs_done=epochs_done, stopped_early=epochs_done < cfg.epochs)


def _per_epoch(fn):
    """An ``on_fit_epoch_end`` callback calling ``fn(epoch, metrics)`` once per training epoch (Ultralytics
    also runs it after the final validation of best.pt: that call is skipped)."""
    seen = {"last": 0}

    def on_fit_epoch_end(trainer) -> None:
        epoch = trainer.epoch + 1
        if epoch <= seen["last"] or epoch > trainer.epochs:
            return
        seen["last"] = epoch
        fn(epoch, _epoch_metrics(trainer))

    return on_fit_epoch_end


def _epoch_metrics(trainer) -> dict:
    """Ultralytics' per-epoch validation numbers under instseg's names (segm_mAP, bbox_mAP, ...)."""
    m = getattr(trainer, "metrics", None) or {}
    names = {"segm_mAP": "metrics/mAP50-95(M)", "segm_mAP50": "metrics/mAP50(M)",
             "bbox_mAP": "metrics/mAP50-95(B)", "bbox_mAP50": "metrics/mAP50(B)"}
    return {ours: float(m[theirs]) for ours, theirs in names.items() if theirs in m}


RESUME_OVERRIDES = ("device", "workers", "batch")
"""What a resumed YOLO run may change (Ultralytics' resume keeps every other argument of the checkpoint)."""


def resume_config(last: Path, epochs: int | None = None):
    """(config, run folder) of the YOLO run whose Ultralytics ``last.pt`` this is: instseg's config.yaml
    of that run folder. Ultralytics' resume cannot change the epoch count: ``--epochs`` is refused with
    the way to train longer (a new run from these weights)."""
    from dataclasses import replace

    from instseg.config import load_yaml

    last = Path(last)
    run = RunDir(last.resolve().parent.parent)
    if not run.config_yaml.is_file():
        raise WeightsError(f"{last}: no instseg config.yaml in {run.root}; resume it with Ultralytics itself "
                           f"(yolo train resume model={last}) or start a new run with --weights {last}")
    cfg = load_yaml(TrainConfig, run.config_yaml)
    if epochs is not None and epochs != cfg.epochs:
        raise ConfigError(f"--epochs {epochs}: Ultralytics' resume keeps the run's {cfg.epochs} epochs; to train "
                          f"longer start a new run from these weights: --weights {last} --epochs {epochs}")
    if _count_rows(run.results_csv) >= cfg.epochs:
        raise WeightsError(f"{last}: training already finished ({cfg.epochs} epochs); Ultralytics cannot extend a "
                           f"finished run: start a new one with --weights {last}")
    return replace(cfg, resume=last, weights=None, pretrained=False), run


class UltralyticsBackend:
    """The :class:`instseg.contract.Backend` of YOLO11-seg / YOLO26-seg (the functions of this module)."""

    name = "ultralytics"

    def available(self) -> str | None:
        return available()

    def train(self, cfg: TrainConfig, run: RunDir, callbacks=None) -> TrainResult:
        return train(cfg, run, callbacks)

    def resume_config(self, last: Path, epochs: int | None = None, force: bool = False):
        return resume_config(last, epochs)  # Ultralytics' resume checks its own dataset

    def predict(self, weights: Path, images: Sequence[Path], cfg: PredictConfig) -> list[ImagePrediction]:
        return predict(weights, images, cfg)

    def predictor(self, weights: Path, cfg: PredictConfig):
        return predictor(weights, cfg)

    def evaluate(self, weights: Path, records, cfg: PredictConfig, out: Path | None = None) -> dict:
        import tempfile

        names = self.describe(weights, cfg).names
        with tempfile.TemporaryDirectory() as tmp:
            return evaluate_split(Path(weights), list(records), names, cfg, Path(out or Path(tmp) / "results.json"))

    def owns(self, weights: Path) -> bool:
        return is_ultralytics_checkpoint(weights)

    def describe(self, weights: Path, cfg: PredictConfig | None = None):
        from instseg.contract import WeightsInfo

        _require()
        info = describe_weights(weights)
        names = info["names"]
        if cfg is not None and cfg.names:
            names = cfg.names
        return WeightsInfo(backend=self.name, architecture=info["architecture"], model=info["size"],
                           names=names, imgsz=info["imgsz"], kind="ultralytics")

    def resolved_args(self, cfg: TrainConfig) -> dict:
        return resolve_ultralytics_args(cfg)


BACKEND = UltralyticsBackend()


def _count_rows(csv_path: Path) -> int:
    if not csv_path.is_file():
        return 0
    return max(0, len(csv_path.read_text().strip().splitlines()) - 1)


def evaluate_split(weights: Path, records: list, names: list[str], cfg: PredictConfig,
                   out_json: Path) -> dict:
    """Predict ``records`` (checked ImageRecords of one split) with ``weights`` at original resolution,
    write COCO results (RLE) to ``out_json`` and score them with instseg's evaluator against the ground
    truth made from the same records. Returns ``Metrics.to_dict(json_safe=True)`` (flat keys, segm_mAP...).
    For COCO scoring use a low ``cfg.conf`` (0.001) and ``cfg.max_det`` >= 100."""
    from instseg.data.coco import records_to_coco
    from instseg.evaluation import evaluate, predictions_to_coco_results, write_results_json

    ids = [r.image_id for r in records]
    if not all(isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
        for i, record in enumerate(records):  # the ids records_to_coco would assign, made explicit
            record.image_id = i + 1
    category_ids = list(range(1, len(names) + 1))
    gt = records_to_coco(records, names, category_ids)
    preds = predict(weights, [r.path for r in records], cfg)
    for record, pred in zip(records, preds):
        pred.image_id = record.image_id
    results = predictions_to_coco_results(preds, category_ids)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    write_results_json(out_json, results)
    from instseg.evaluation.gt_hash import add_gt_sha256

    return add_gt_sha256(evaluate(gt, results).to_dict(json_safe=True), gt)


def predictor(weights: Path, cfg: PredictConfig):
    """``weights`` loaded once (Ultralytics' ``YOLO``): ``fn(images) -> [ImagePrediction]`` with boxes xyxy and
    RLE masks in absolute pixels of the original EXIF-oriented image, labels 0-based. Images are decoded by
    instseg (EXIF, gray, 16-bit handled as for the ground truth) and handed to Ultralytics as BGR arrays,
    ``cfg.batch`` at a time."""
    _require()
    if cfg.mask_threshold != 0.5:
        raise ConfigError(f"mask_threshold={cfg.mask_threshold}: Ultralytics binarizes masks at 0.5; use 0.5")
    configure_offline()
    import numpy as np

    from instseg.backends.ultralytics_masks import native_mask_rles, predictor_class
    from instseg.data.images import load_image

    model = load_yolo(weights)
    # Ultralytics' retina masks (original resolution), computed on each box alone (ultralytics_masks.py)
    kwargs = dict(conf=cfg.conf, iou=cfg.iou, max_det=cfg.max_det, verbose=False, predictor=predictor_class(),
                  batch=max(1, cfg.batch), device=cfg.device.split(",")[0] or None)
    if cfg.imgsz:
        kwargs["imgsz"] = cfg.imgsz

    def predict_chunk(images: Sequence[Path]) -> list[ImagePrediction]:
        out: list[ImagePrediction] = []
        paths = [Path(p) for p in images]
        for start in range(0, len(paths), max(1, cfg.batch)):
            chunk = paths[start:start + max(1, cfg.batch)]
            arrays = [np.ascontiguousarray(load_image(p)[:, :, ::-1]) for p in chunk]
            for path, image, result in zip(chunk, arrays, model.predict(arrays, **kwargs)):
                h, w = image.shape[:2]
                pred = ImagePrediction(path=path, height=h, width=w)
                if result.boxes is not None and len(result.boxes):
                    protos, coefficients = getattr(result, "instseg_masks", (None, None))
                    if protos is None or protos.ndim != 3 or coefficients.shape[0] != len(result.boxes):
                        raise WeightsError(f"{weights}: gave no masks for {path}; is it a -seg model?")
                    pred.masks, keep = native_mask_rles(protos, coefficients, result.boxes.xyxy, h, w)
                    pred.boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32)[keep]  # as Ultralytics: a
                    pred.scores = result.boxes.conf.cpu().numpy().astype(np.float32)[keep]  # box with an empty
                    pred.labels = result.boxes.cls.cpu().numpy().astype(np.int64)[keep]  # mask is dropped
                out.append(pred)
        return out

    return predict_chunk


def predict(weights: Path, images: Sequence[Path], cfg: PredictConfig) -> list[ImagePrediction]:
    """Ultralytics' predictions of ``images`` mapped to instseg's records (see :func:`predictor`)."""
    return predictor(weights, cfg)(images)


__all__ = ["BACKEND", "UltralyticsBackend", "resume_config", "INSTALL_HINT", "METRICS_NOTE", "available", "check_dataset", "configure_offline",
           "describe_weights", "evaluate_split", "is_ultralytics_checkpoint", "model_source", "predict",
           "predictor", "pretrained_path", "resolve_ultralytics_args", "train"]
