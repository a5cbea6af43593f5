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


def resume_config(last: Path, epochs: int | None = None) -> tuple[TrainConfig, RunDir]:
    """The config a checkpoint was trained with (``epochs`` may extend it) and its run folder."""
    from instseg.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(last)
    try:
        cfg = from_dict(TrainConfig, ckpt["config"])
    except Exception as e:
        raise WeightsError(f"{last}: its 'config' does not fit this instseg version ({e})") from e
    done = int(ckpt.get("epoch", -1)) + 1
    if epochs is not None and epochs < done:
        raise WeightsError(f"{last}: --epochs {epochs} < the {done} epochs already trained; give more epochs")
    if epochs is None and done >= cfg.epochs:
        raise WeightsError(f"{last}: training already finished ({done}/{cfg.epochs} epochs); "
                           f"pass --epochs N (> {done}) to extend it")
    cfg = replace(cfg, resume=Path(last), epochs=epochs or cfg.epochs, weights=None, pretrained=False)
    return cfg, RunDir(Path(last).resolve().parent.parent)


def make_run_dir(cfg: TrainConfig) -> RunDir:
    """The new run folder (``project/name``, ``name2``... as Ultralytics increments), created."""
    project = cfg.project or default_project(cfg.architecture, cfg.model or get_architecture(cfg.architecture).default_size)
    return next_run_dir(project, cfg.name, cfg.exist_ok).make()


def load_records(data: Path, split: str, log=print) -> list[ImageRecord]:
    """The checked records of one split of ``data`` (a data.yaml); problems are reported, fatal ones raise."""
    from instseg.data.checks import load_split

    _check_data_yaml(data)
    records, findings = load_split(Path(data), split)
    bad = [f for f in findings if f.severity in (Severity.ERROR, Severity.FATAL)]
    for f in bad[:5]:
        log(f"  {f}")
    if len(bad) > 5:
        log(f"  ... and {len(bad) - 5} more problems (run `instseg doctor {data}`)")
    if any(f.severity == Severity.FATAL for f in findings):
        raise DatasetError(f"{data}: the {split} split cannot be used (see above; `instseg doctor {data}`)")
    return records


def _check_data_yaml(data: Path | None) -> None:
    if data is None:
        raise DatasetError("no dataset: pass --data path/to/data.yaml")
    if Path(data).suffix.lower() == ".json":
        raise DatasetError(f"{data}: training reads a YOLO data.yaml; convert COCO JSON first with "
                           f"`instseg convert coco2yolo --coco {data} --images DIR --out DIR`")


def dataset_names(data: Path) -> list[str]:
    from instseg.data.yaml_config import load_data_yaml

    _check_data_yaml(data)
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
    """The model of ``cfg``: random init, upstream weights (--pretrained) or an instseg checkpoint (--weights)."""
    from instseg.engine.checkpoint import is_instseg_checkpoint, load_checkpoint, model_state
    from instseg.models.build import build_model

    if cfg.weights is not None and get_architecture(cfg.architecture).backend == "native" \
            and not is_instseg_checkpoint(cfg.weights):
        # a framework's own file (an MMDetection .pth of the same layout): the family's loader maps it and
        # re-initializes only the classification layer when the class count differs
        log(f"loading {cfg.weights} as an upstream (MMDetection) checkpoint")
        return build_model(cfg.architecture, cfg.model, num_classes, imgsz=cfg.imgsz, pretrained=cfg.weights,
                           freeze=cfg.freeze)
    extra = {}
    if cfg.pretrained_backbone:
        if get_architecture(cfg.architecture).backend != "native":
            raise ConfigError(f"--pretrained-backbone is for the native families (solov2, rtmdet-ins); "
                              f"{cfg.architecture} takes --pretrained (full upstream weights)")
        extra["pretrained_backbone"] = True
    model = build_model(cfg.architecture, cfg.model, num_classes, imgsz=cfg.imgsz, pretrained=cfg.pretrained,
                        freeze=cfg.freeze, **extra)
    if cfg.weights is not None:
        ckpt = load_checkpoint(cfg.weights)
        n = load_matching(model, model_state(ckpt), cfg.weights)
        log(f"loaded {n}/{len(model.state_dict())} tensors from {cfg.weights}")
    return model


__all__ = ["with_defaults", "resume_config", "make_run_dir", "load_records", "dataset_names", "seed_everything",
           "load_matching", "build_for_run"]
