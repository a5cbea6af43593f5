"""The part shared by every backend whose models instseg's own engine trains (native, torchvision, and any
framework whose model is wrapped in the model contract): train, resume, predict and evaluate all go to
``instseg.engine``; a subclass says which architectures are its own and which foreign files it reads.

A model of such a backend implements the model contract (ARCHITECTURE.md) and its family builder takes
``pretrained=True`` (the upstream zoo weights) or ``pretrained=<path>`` (a file in the upstream framework's
own format), which is how foreign checkpoints are loaded for prediction and fine-tuning.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

from instseg.contract import PredictConfig, TrainResult, WeightsInfo
from instseg.errors import WeightsError
from instseg.rundir import RunDir
from instseg.sniff import PickleSummary, pickle_summary

# 0-based COCO class names: what a checkpoint trained on COCO's 80 classes predicts
COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]


class EngineTrainedBackend:
    """A backend whose architectures instseg's engine trains. Subclasses set ``name``, ``requires`` and
    implement ``foreign_architecture`` / ``foreign_classes`` for the framework files they read."""

    name: str = ""
    requires: tuple[str, ...] = ("torch", "torchvision")
    install_hint: str = "torch and torchvision are required: pip install torch torchvision"
    foreign_kind: str = ""  # what describe() calls a framework file of this backend ("mmdet", ...)
    foreign_prefix: str = ""  # where the framework's own module sits inside instseg's wrapper ("model.")

    # ------------------------------------------------------------------------------------------ contract
    def available(self) -> str | None:
        """Found without importing anything (``instseg list-models`` stays fast)."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        return self.install_hint if missing else None

    def architectures(self) -> list[str]:
        from instseg.models.registry import ARCHITECTURES

        return [name for name, spec in ARCHITECTURES.items() if spec.backend == self.name]

    def train(self, cfg, run: RunDir, callbacks=None) -> TrainResult:
        """``callbacks``: ``fn(epoch, metrics)`` after each epoch's validation (instseg.engine.trainer)."""
        from instseg.engine.trainer import train as engine_train

        return engine_train(cfg, run, callbacks)

    def resume_config(self, last: Path, epochs: int | None = None, force: bool = False):
        """(config, run folder) to continue the run whose ``last.pt`` this is (``epochs`` extends it; a
        changed dataset stops it unless ``force``)."""
        from instseg.engine.setup import resume_config

        return resume_config(last, epochs, force=force)

    def predict(self, weights: Path, images: Sequence[Path], cfg: PredictConfig):
        from instseg.engine.predict import predict_images

        return predict_images(weights, images, cfg, self._foreign_info(weights, cfg))

    def predictor(self, weights: Path, cfg: PredictConfig):
        from instseg.engine.predict import image_predictor

        return image_predictor(weights, cfg, self._foreign_info(weights, cfg))

    def evaluate(self, weights: Path, records, cfg: PredictConfig, out: Path | None = None) -> dict:
        from instseg.engine.predict import evaluate_records

        return evaluate_records(weights, records, cfg, out, self._foreign_info(weights, cfg))

    def _foreign_info(self, weights: Path, cfg: PredictConfig) -> WeightsInfo | None:
        """None for an instseg checkpoint (the engine reads its own metadata while loading it: one load, not
        two), else what ``describe`` says of the framework file."""
        summary = pickle_summary(weights)
        if summary is not None and _is_instseg(summary):
            return None
        return self.describe(weights, cfg)

    def owns(self, weights: Path) -> bool:
        summary = pickle_summary(weights)
        if summary is None:
            return False
        if _is_instseg(summary):
            return summary.value_after("architecture") in self.architectures()
        return self.foreign_architecture(summary) is not None

    def describe(self, weights: Path, cfg: PredictConfig | None = None) -> WeightsInfo:
        cfg = cfg or PredictConfig()
        summary = pickle_summary(weights)
        if summary is None:
            raise WeightsError(f"{weights}: not a torch checkpoint file")
        if _is_instseg(summary):
            from instseg.engine.checkpoint import load_checkpoint

            ckpt = load_checkpoint(weights)
            return WeightsInfo(backend=self.name, architecture=ckpt["architecture"], model=ckpt["size"],
                               names=list(ckpt["names"]), imgsz=ckpt.get("imgsz"), kind="instseg")
        return self._describe_foreign(Path(weights), summary, cfg)

    def resolved_args(self, cfg) -> dict:
        return {}  # instseg's engine trains it: the resolved config is the whole story

    # ------------------------------------------------------------------------------- foreign checkpoints
    def foreign_architecture(self, summary: PickleSummary) -> str | None:
        """The architecture of a framework file of this backend (from its key names), else None."""
        return None

    def foreign_classes(self, state: dict) -> int:
        """The class count a framework state dict was trained for."""
        raise NotImplementedError

    def foreign_names(self, weights: Path) -> list[str] | None:
        """Class names the framework file itself records (MMDetection's ``meta.dataset_meta``), if any."""
        return None

    def _describe_foreign(self, weights: Path, summary: PickleSummary, cfg: PredictConfig) -> WeightsInfo:
        from instseg.models.common.checkpoints import read_mmdet_state_dict
        from instseg.models.registry import get_architecture

        found = self.foreign_architecture(summary)
        architecture = cfg.architecture or found
        if architecture is None or architecture not in self.architectures():
            raise WeightsError(f"{weights}: not a checkpoint of {', '.join(self.architectures())}; "
                               "pass --architecture/-a")
        if found is not None and cfg.architecture and cfg.architecture != found:
            raise WeightsError(f"{weights}: holds a {found} model, not {cfg.architecture}; "
                               f"pass --architecture {found}")
        state, _ = read_mmdet_state_dict(weights)
        nc = self.foreign_classes(state)
        size = cfg.model or self._match_size(architecture, state, nc, weights)
        names = cfg.names or self.foreign_names(weights)
        if names is None and nc == len(COCO80):
            names = list(COCO80)
        if names is None:
            raise WeightsError(f"{weights}: a {nc}-class {architecture} checkpoint without class names; pass "
                               "--data path/to/data.yaml or --names a,b,c")
        if len(names) != nc:
            raise WeightsError(f"{weights}: the checkpoint predicts {nc} classes, the names given are "
                               f"{len(names)} ({', '.join(names[:5])}...); pass the dataset it was trained on")
        spec = get_architecture(architecture).sizes[size]
        return WeightsInfo(backend=self.name, architecture=architecture, model=size, names=list(names),
                           imgsz=cfg.imgsz or spec.default_imgsz, kind=self.foreign_kind)

    def _match_size(self, architecture: str, state: dict, nc: int, weights: Path) -> str:
        """The registered size whose parameter names and shapes equal ``state``'s (models built on the meta
        device: no memory, no init cost)."""
        import torch

        from instseg.models.build import build_model
        from instseg.models.registry import get_architecture

        shapes = {k: tuple(v.shape) for k, v in state.items()}
        for size in get_architecture(architecture).sizes:
            with torch.device("meta"):
                model = build_model(architecture, size, nc)
            p = self.foreign_prefix
            own = {k[len(p):] if k.startswith(p) else k: tuple(v.shape) for k, v in model.state_dict().items()}
            if own == shapes or own == {k: shapes.get(k) for k in own} and set(shapes) <= set(own) | _aux(shapes):
                return size
        valid = ", ".join(get_architecture(architecture).sizes)
        raise WeightsError(f"{weights}: fits no registered {architecture} size; pass --model/-m ({valid})")


def _aux(shapes: dict) -> set:
    return {k for k in shapes if k.endswith("num_batches_tracked")}


def _is_instseg(summary: PickleSummary) -> bool:
    return summary.value_after("architecture") is not None and "names" in summary.strings and \
        "size" in summary.strings


__all__ = ["EngineTrainedBackend", "COCO80"]
