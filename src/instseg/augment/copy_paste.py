"""Copy-paste (Ultralytics' "flip" mode): instances of the horizontally flipped sample pasted onto it.

Candidates are the flipped instances whose box covers no existing box by 30 % or more of the existing box's
area (Ultralytics' rule); ``round(p * N)`` of them are pasted. Unlike Ultralytics, instances that a paste covers
are updated: they become full-resolution masks minus the pasted pixels (and are removed by ``min_area`` if
little is left). Applied on the output canvas, after the geometric warp.
"""

from __future__ import annotations

import numpy as np

from instseg.augment import geometry as G
from instseg.augment.rasterize import rasterize_polygons
from instseg.augment.sample import Sample, transform_boxes, transform_polys
from instseg.augment.targets import mask_box


def _box_of(s: Sample, i: int) -> np.ndarray:
    if s.polys[i] is not None:
        return G.points_bbox(s.polys[i])
    if s.masks[i] is not None:
        return mask_box(s.masks[i])
    return s.boxes[i]


def ioa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of boxes ``a [N, 4]`` and ``b [M, 4]`` over the area of each ``b``: ``[N, M]``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(1)
    return inter / np.maximum(area_b[None], 1e-9)


def _full_mask(s: Sample, i: int) -> np.ndarray | None:
    w, h = s.size
    if s.polys[i] is not None:
        return rasterize_polygons(s.polys[i], h, w, 1)
    return s.masks[i]


def copy_paste(s: Sample, rng: np.random.Generator, p: float) -> Sample:
    """Paste flipped copies of ``round(p * N)`` instances of ``s`` that do not overlap the others much."""
    has = [i for i in range(len(s)) if s.polys[i] is not None or s.masks[i] is not None]
    if p <= 0 or not has:
        return s
    w, h = s.size
    flip = G.flip_lr(w)
    boxes = np.array([_box_of(s, i) for i in range(len(s))]).reshape(-1, 4)
    flipped = transform_boxes(boxes[has], flip, w, h)
    ok = [has[k] for k in np.flatnonzero((ioa(flipped, boxes) < 0.30).all(1))]
    k = round(p * len(has))
    if not ok or k == 0:
        return s
    chosen = rng.choice(ok, size=min(k, len(ok)), replace=False)
    image = s.image.copy()
    mirror = s.image[:, ::-1]
    pasted = np.zeros((h, w), bool)
    cls, polys, masks, new_boxes = list(s.cls), list(s.polys), list(s.masks), list(s.boxes)
    for i in chosen:
        if s.polys[i] is not None:
            parts = transform_polys([s.polys[i]], flip, (0, 0, w, h))[0]
            full = rasterize_polygons(parts, h, w, 1).astype(bool)
            polys.append(parts)
            masks.append(None)
        else:
            full = s.masks[i][:, ::-1].astype(bool)
            polys.append(None)
            masks.append(full.astype(np.uint8))
        cls.append(s.cls[i])
        new_boxes.append(transform_boxes(s.boxes[i : i + 1], flip, w, h)[0])
        pasted |= full
    image[pasted] = mirror[pasted]
    for j in range(len(s)):  # the originals lose what the pastes cover
        if (polys[j] is None and masks[j] is None) or not pasted[
            int(boxes[j, 1]) : int(np.ceil(boxes[j, 3])), int(boxes[j, 0]) : int(np.ceil(boxes[j, 2]))
        ].any():
            continue
        full = _full_mask(s, j)
        polys[j], masks[j] = None, (full.astype(bool) & ~pasted).astype(np.uint8)
    return Sample(
        image=image,
        cls=np.asarray(cls, np.int64),
        polys=polys,
        masks=masks,
        boxes=np.asarray(new_boxes, np.float64).reshape(-1, 4),
        matrix=s.matrix,
    )
