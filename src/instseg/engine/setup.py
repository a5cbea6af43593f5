"""Everything the training loop needs before its first iteration: defaults from the registry, the dataset
records, the model (random init, --pretrained or --weights), the run folder, seeds."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np

from instseg.config import ConfigError, TrainConfig, from_dict, with_unset
from instseg.data.types import ImageRecord, Severity
from instseg.rundir import RunDir, default_project, next_run_dir
from instseg.errors import DatasetError, WeightsError
from instseg.models.registry import get_architecture, get_size


def with_defaults(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with model size, batch and imgsz filled from the registry where they are None, and the
    architecture's ``train_defaults`` (configs/models/<architecture>.yaml) where those are unset."""
    arch = get_architecture(cfg.architecture)
    size = cfg.model or arch.default_size
    spec = get_size(cfg.architecture, size)
    cfg = replace(cfg, model=size, batch=cfg.batch or spec.default_batch, imgsz=cfg.imgsz or spec.default_imgsz)
    return with_unset(cfg, arch.train_defaults)


def resume_config(last: Path, epochs: int | None = None, force: bool = False) -> tuple[TrainConfig, RunDir]:
    """The config a checkpoint was trained with (``epochs`` may extend it) and its run folder. A dataset that
    changed since the checkpoint stops the resume unless ``force`` (engine/dataset_fingerprint.py)."""
    from instseg.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(last)
    try:
        cfg = from_dict(TrainConfig, ckpt["config"])
    except Exception as e:
        raise WeightsError(f"{last}: its 'config' does not fit this instseg version ({e})") from e
    done = int(ckpt.get("epoch", -1)) + 1
    if epochs is not None and epochs < done:
        raise WeightsError(f"{last}: --epochs {epochs} < the {done} epochs already trained; give more epochs")
    final_eval_missing = not (Path(last).resolve().parent.parent / "metrics.json").exists()  # killed before it
    if epochs is None and done >= cfg.epochs and not final_eval_missing:
        raise WeightsError(f"{last}: training already finished ({done}/{cfg.epochs} epochs); "
                           f"pass --epochs N (> {done}) to extend it")
    cfg = replace(cfg, resume=Path(last), epochs=epochs or cfg.epochs, weights=None, pretrained=False)
    from instseg.engine.checkpoint import remove_stale_temps
    from instseg.engine.dataset_fingerprint import check_resume_data

    check_resume_data(ckpt, cfg, force)

    remove_stale_temps(Path(last).resolve().parent.parent)  # left by a kill mid-write
    return cfg, RunDir(Path(last).resolve().parent.parent)


def run_project(cfg: TrainConfig) -> Path:
    """The folder the run folder goes in: ``--project``, else ``work_dirs/<architecture>-<size>``."""
    return Path(cfg.project or default_project(cfg.architecture,
                                               cfg.model or get_architecture(cfg.architecture).default_size))


def make_run_dir(cfg: TrainConfig) -> RunDir:
    """The new run folder (``project/name``, ``name2``... as Ultralytics increments), created."""
    return next_run_dir(run_project(cfg), cfg.name, cfg.exist_ok).make()


def load_records(data: Path, split: str, log=print) -> list[ImageRecord]:
    """The checked records of one split of ``data`` (a data.yaml); problems are reported, fatal ones raise."""
    from instseg.data.checks import load_split

    check_data_yaml(data)
    records, findings = load_split(Path(data), split)
    bad = [f for f in findings if f.severity in (Severity.ERROR, Severity.FATAL)]
    for f in bad[:5]:
        log(f"  {f}")
    if len(bad) > 5:
        log(f"  ... and {len(bad) - 5} more problems (run `instseg doctor {data}`)")
    if any(f.severity == Severity.FATAL for f in findings):
        raise DatasetError(f"{data}: the {split} split cannot be used (see above; `instseg doctor {data}`)")
    return records


def check_data_yaml(data: Path | None) -> None:
    """DatasetError naming the fix when ``data`` is not a data.yaml training can read (none, a COCO JSON)."""
    if data is None:
        raise DatasetError("no dataset: pass --data path/to/data.yaml")
    if Path(data).suffix.lower() == ".json":
        raise DatasetError(f"{data}: training reads a YOLO data.yaml; convert the COCO JSON first with "
                           f"`instseg convert coco2yolo --coco {data} --images DIR --out DIR` and pass the "
                           "data.yaml it writes")


def dataset_names(data: Path) -> list[str]:
    from instseg.data.yaml_config import load_data_yaml

    check_data_yaml(data)
    return load_data_yaml(Path(data)).names


def seed_everything(seed: int, deterministic: bool) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def load_matching(model, state: dict, path: Path) -> int:
    """Copy every tensor of ``state`` whose name and shape fit ``model`` (class heads of another dataset do
    not); WeightsError when nothing fits. Returns the number of tensors loaded."""
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fit:
        raise WeightsError(f"{path}: no weight fits this model (wrong --architecture/--model?)")
    model.load_state_dict(fit, strict=False)
    return len(fit)


def build_for_run(cfg: TrainConfig, num_classes: int, log=print):
    """The model of ``cfg``: random init, upstream weights (--pretrained), an instseg checkpoint (--weights)
    or a framework's own file (--weights model.pth: the family builder's ``pretrained=path`` loader maps it
    and re-initializes only the class layers when the class count differs)."""
    import inspect

    from instseg.engine.checkpoint import is_instseg_checkpoint, load_checkpoint, model_state
    from instseg.models.build import build_model, import_builder

    spec = get_architecture(cfg.architecture)
    takes = inspect.signature(import_builder(spec.builder)).parameters
    if cfg.weights is not None and not Path(cfg.weights).is_file():
        raise WeightsError(f"--weights {cfg.weights}: file not found")
    heads: dict = {}
    if cfg.roi_batch is not None:
        if "roi_batch" not in takes:
            raise ConfigError(f"roi_batch={cfg.roi_batch}: {cfg.architecture} samples no RoIs (a two-stage "
                              "setting: maskrcnn, detectron2-maskrcnn); leave it unset")
        if cfg.roi_batch < 1:
            raise ConfigError(f"roi_batch={cfg.roi_batch} must be a positive number of RoIs per image (e.g. 128)")
        heads["roi_batch"] = int(cfg.roi_batch)
    if cfg.weights is not None and not is_instseg_checkpoint(cfg.weights):
        log(f"loading {cfg.weights} as an upstream checkpoint of {cfg.architecture}")
        return build_model(cfg.architecture, cfg.model, num_classes, imgsz=cfg.imgsz, pretrained=Path(cfg.weights),
                           freeze=cfg.freeze, **heads)
    extra = dict(heads)
    if cfg.pretrained_backbone:
        if "pretrained_backbone" not in takes:
            raise ConfigError(f"--pretrained-backbone: {cfg.architecture} has no separate ImageNet backbone "
                              "weights; use --pretrained (full upstream weights)")
        extra["pretrained_backbone"] = True
    model = build_model(cfg.architecture, cfg.model, num_classes, imgsz=cfg.imgsz, pretrained=cfg.pretrained,
                        freeze=cfg.freeze, **extra)
    if cfg.weights is not None:
        ckpt = load_checkpoint(cfg.weights)
        n = load_matching(model, model_state(ckpt), cfg.weights)
        log(f"loaded {n}/{len(model.state_dict())} tensors from {cfg.weights}")
    return model


__all__ = ["with_defaults", "resume_config", "run_project", "make_run_dir", "load_records", "dataset_names",
           "seed_everything", "load_matching", "build_for_run"]
