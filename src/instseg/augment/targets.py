"""A finished sample as training targets: boxes from the geometry, masks rasterized once at the stride.

Instances whose visible area (polygon area, mask pixels, or box area for box-only instances) is below
``min_area`` output pixels are removed from every array together. Box-only instances are kept with an empty
mask and ``has_mask = False`` so that mask losses can skip them. A kept polygon instance too thin to cover
any cell centre at the stride gets every cell it touches, and a mask instance that vanished at the stride
the cell under its box centre, so that no mask target is empty.
"""

from __future__ import annotations

import numpy as np

from instseg.augment import geometry as G
from instseg.augment.rasterize import rasterize_polygons, rasterize_touching, reduce_mask
from instseg.augment.sample import Sample


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Tight ``xyxy`` box of a full-resolution 0/1 mask in pixel edges (column 3 alone: x1=3, x2=4)."""
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    if len(xs) == 0:
        return np.zeros(4)
    return np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float64)


def to_targets(s: Sample, stride: int, min_area: float) -> dict[str, np.ndarray]:
    """``labels`` int64 [N], ``boxes`` float32 [N, 4] (xyxy canvas pixels), ``masks`` uint8 [N, H/s, W/s],
    ``has_mask`` bool [N], ``areas`` float32 [N] (visible area, canvas pixels), ``polygons``: per instance its
    clipped polygon parts in canvas pixels ([] for mask and box-only instances)."""
    w, h = s.size
    hs, ws = -(-h // stride), -(-w // stride)
    n = len(s)
    boxes = np.zeros((n, 4))
    areas = np.zeros(n)
    has_mask = np.zeros(n, bool)
    for i in range(n):
        parts, full = s.polys[i], s.masks[i]
        if parts is not None:
            areas[i] = sum(G.polygon_area(p) for p in parts)
            boxes[i] = G.points_bbox(parts)
            has_mask[i] = True
        elif full is not None:
            areas[i] = float(np.count_nonzero(full))
            boxes[i] = mask_box(full)
            has_mask[i] = True
        else:
            b = s.boxes[i]
            areas[i] = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
            boxes[i] = b
    keep = np.flatnonzero(areas >= max(min_area, 1e-9))
    masks = np.zeros((len(keep), hs, ws), np.uint8)
    for j, i in enumerate(keep):
        if s.polys[i] is not None:
            masks[j] = rasterize_polygons(s.polys[i], h, w, stride)
            if not masks[j].any():  # thinner than a cell: take every cell it touches instead
                masks[j] = rasterize_touching(s.polys[i], h, w, stride)
        elif s.masks[i] is not None:
            masks[j] = reduce_mask(s.masks[i], stride)
        else:
            continue
        if not masks[j].any():  # a mask thinner than a cell: the cell under its box centre
            cx, cy = (boxes[i, 0] + boxes[i, 2]) / 2, (boxes[i, 1] + boxes[i, 3]) / 2
            masks[j, min(int(cy // stride), hs - 1), min(int(cx // stride), ws - 1)] = 1
    return {
        "labels": s.cls[keep].astype(np.int64),
        "boxes": boxes[keep].astype(np.float32).reshape(-1, 4),
        "masks": masks,
        "has_mask": has_mask[keep],
        "areas": areas[keep].astype(np.float32),
        "polygons": [s.polys[i] or [] for i in keep],
    }
