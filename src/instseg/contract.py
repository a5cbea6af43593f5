"""The backend contract and the types every layer shares (below the engine and the backends alike).

A backend is one module ``instseg.backends.<name>`` that exports one object ``BACKEND`` implementing
:class:`Backend`. The registry (``instseg.models.registry``) maps an architecture to the backend's name;
``instseg.backends.get_backend(name)`` imports the module and returns the object. The engine, the CLI and
the commands built on them (compare, tune, export) only ever call these methods, never a backend by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

from instseg.rundir import RunDir

if TYPE_CHECKING:  # typing only: the contract imports nothing at run time but the run folder
    from instseg.config import TrainConfig
    from instseg.data.types import ImageRecord
    from instseg.structures import ImagePrediction


@dataclass
class PredictConfig:
    """Options of ``instseg predict`` / ``instseg eval --weights`` / evaluation-time prediction."""

    imgsz: int | None = None  # None: the size the weights were trained at
    conf: float = 0.25  # score threshold (evaluation uses 0.001)
    iou: float = 0.5  # NMS IoU threshold where the model uses NMS
    max_det: int = 100
    device: str = ""
    batch: int = 1
    mask_threshold: float = 0.5
    # what a foreign checkpoint (an MMDetection .pth, a torchvision state dict) cannot say about itself
    architecture: str | None = None  # --architecture / -a
    model: str | None = None  # --model / -m (the size)
    names: list[str] | None = None  # class names (from --data or --names); None: the file's own / COCO's


@dataclass
class TrainResult:
    run: RunDir
    best: Path | None
    last: Path | None
    metrics: dict = field(default_factory=dict)  # the final metrics.json content
    epochs_done: int = 0
    stopped_early: bool = False


@dataclass
class WeightsInfo:
    """What a checkpoint file says about itself (``Backend.describe``)."""

    backend: str
    architecture: str | None
    model: str | None  # the size
    names: list[str] | None
    imgsz: int | None = None
    kind: str = "instseg"  # "instseg", "mmdet", "torchvision", "ultralytics", "onnx", ...
    extra: dict = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What a backend must implement (ARCHITECTURE.md, "Adding a backend")."""

    name: str

    def available(self) -> str | None:
        """None when the framework can be used, else why not plus the install command. Must not import the
        framework (``instseg list-models`` stays fast): use ``importlib.util.find_spec``."""

    def train(self, cfg: "TrainConfig", run: RunDir) -> TrainResult:
        """Train ``cfg`` (``cfg.resume`` set: continue that run) and write the run folder: config.yaml,
        weights/best.pt + last.pt, results.csv, metrics.json, predictions/val.json."""

    def resume_config(self, last: Path, epochs: int | None = None, force: bool = False) -> tuple["TrainConfig", RunDir]:
        """The config and run folder of the run whose ``last`` checkpoint this is; ``epochs`` extends it where
        the framework allows; ``force`` resumes even though the dataset changed."""

    def predict(self, weights: Path, images: Sequence[Path], cfg: PredictConfig) -> list["ImagePrediction"]:
        """One prediction per image, at the original image size (absolute pixels), masks as COCO RLE."""

    def predictor(self, weights: Path, cfg: PredictConfig) -> Callable[[Sequence[Path]], list["ImagePrediction"]]:
        """``weights`` loaded once: a function that predicts a list of image files as ``predict`` does (same
        pre- and post-processing, ``cfg.batch`` at a time). ``instseg compare`` times it image by image."""

    def evaluate(self, weights: Path, records: list["ImageRecord"], cfg: PredictConfig,
                 out: Path | None = None) -> dict:
        """COCO metrics (``Metrics.to_dict()``) of ``weights`` on ``records`` with instseg's evaluator;
        ``out``: also write the results JSON there."""

    def owns(self, weights: Path) -> bool:
        """True when ``weights`` is a file of this backend's format. Reads headers/zip entries only, never
        unpickles, never imports the framework."""

    def describe(self, weights: Path, cfg: PredictConfig | None = None) -> WeightsInfo:
        """Architecture, size, class names and imgsz of ``weights`` (``cfg`` supplies what the file lacks)."""

    def resolved_args(self, cfg: "TrainConfig") -> dict[str, Any]:
        """What ``instseg train --dry-run`` prints beside the resolved config (a framework's own arguments);
        {} when the engine trains it."""


__all__ = ["Backend", "PredictConfig", "TrainResult", "WeightsInfo", "RunDir"]
