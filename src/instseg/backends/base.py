"""The backend contract. A backend module (``instseg.backends.<name>``) exposes three functions::

    def available() -> str | None
        None when the framework can be used, else why not plus the install command.
    def train(cfg: TrainConfig, run: RunDir) -> TrainResult
        Trains, writes the run folder (config.yaml, weights/, results.csv, metrics.json,
        predictions/val.json) and returns what it wrote.
    def predict(weights: Path, images: Sequence[Path], cfg: PredictConfig) -> list[ImagePrediction]
        Predictions at the original image size (absolute pixels), masks as COCO RLE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from instseg.engine.rundir import RunDir


@dataclass
class PredictConfig:
    """Options of ``instseg predict`` / evaluation-time prediction."""

    imgsz: int | None = None  # None: the size the weights were trained at
    conf: float = 0.25  # score threshold (evaluation uses 0.001)
    iou: float = 0.5  # NMS IoU threshold where the model uses NMS
    max_det: int = 100
    device: str = ""
    batch: int = 1
    mask_threshold: float = 0.5


@dataclass
class TrainResult:
    run: RunDir
    best: Path | None
    last: Path | None
    metrics: dict = field(default_factory=dict)  # the final metrics.json content
    epochs_done: int = 0
    stopped_early: bool = False


__all__ = ["PredictConfig", "TrainResult", "RunDir", "Path"]
