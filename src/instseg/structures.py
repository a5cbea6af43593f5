"""Prediction records shared by every backend, the evaluator and the writers.

A backend returns one :class:`ImagePrediction` per image, **already mapped back to the original image**
(absolute pixels of the EXIF-oriented image, the same frame as the ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ImagePrediction:
    path: Path | None
    height: int  # original image size
    width: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # xyxy pixels
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # 0-based class index
    masks: list[dict] = field(default_factory=list)  # COCO RLE per instance at (height, width)
    image_id: int | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])
