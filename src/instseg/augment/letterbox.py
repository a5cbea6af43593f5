"""Rectangular validation batches (Ultralytics' ``rect``): images of similar aspect ratio batched together
and letterboxed to the smallest ``stride``-multiple rectangle that holds the batch at ``imgsz``.

Shapes are ``(height, width)`` pixels. Use the batches as a DataLoader ``batch_sampler`` and give the shapes
to :class:`instseg.augment.dataset.InstanceSegDataset` (``rect_shapes``).
"""

from __future__ import annotations

import math

import numpy as np

from instseg.data.types import ImageRecord


def rect_batches(
    records: list[ImageRecord], batch: int, imgsz: int, stride: int = 32, pad: float = 0.5
) -> tuple[list[list[int]], dict[int, tuple[int, int]]]:
    """``(batches, shapes)``: index lists sorted by aspect ratio (h/w), and each index's letterbox shape.

    A batch of wide images (all h/w < 1) gets ``h = imgsz * max(h/w)``, a batch of tall ones
    ``w = imgsz / min(h/w)``; a mixed batch stays square. Each side is rounded up to a multiple of ``stride``
    after adding ``pad`` strides, as Ultralytics does for validation.
    """
    if batch < 1:
        raise ValueError(f"batch={batch} must be >= 1")
    ar = np.array([r.height / r.width for r in records], np.float64)
    order = np.argsort(ar, kind="stable")
    batches: list[list[int]] = []
    shapes: dict[int, tuple[int, int]] = {}
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        lo, hi = ar[idx].min(), ar[idx].max()
        sh, sw = (hi, 1.0) if hi < 1 else (1.0, 1.0 / lo) if lo > 1 else (1.0, 1.0)
        shape = (
            int(math.ceil(sh * imgsz / stride + pad) * stride),
            int(math.ceil(sw * imgsz / stride + pad) * stride),
        )
        batches.append([int(i) for i in idx])
        shapes.update({int(i): shape for i in idx})
    return batches, shapes
