"""Masks at a stride: polygons rasterized once by exact centre sampling, full-resolution masks by area.

A mask at stride ``s`` has cell ``(i, j)`` covering the input square ``[s*j, s*(j+1)] x [s*i, s*(i+1)]``
(continuous input pixels, see :mod:`instseg.augment.geometry`); the cell is set when its centre
``(s*(j+0.5), s*(i+0.5))`` lies inside the polygon (even-odd rule per part, union over parts). Unlike
``cv2.fillPoly``, which also fills every cell its edges touch (+0.5 to 0.7 cell per cell of perimeter), this
is unbiased: the mask area equals the polygon area up to boundary noise.
"""

from __future__ import annotations

import numpy as np


def _fill_part(p: np.ndarray, out: np.ndarray) -> None:
    """OR the cells of ``out`` (H x W) whose centres are inside polygon ``p`` (in cell units) into ``out``.

    Each edge crosses the centre lines ``y = i + 0.5`` of the rows in ``[ceil(lo - 0.5), ceil(hi - 0.5))``
    (half-open, so a vertex on a centre line counts once); at a crossing ``x``, every cell ``j`` with
    ``j + 0.5 > x`` has it on its left. Cumulative counts along each row, odd = inside."""
    h, w = out.shape
    q = np.concatenate((p[1:], p[:1]))
    lo, hi = np.minimum(p[:, 1], q[:, 1]), np.maximum(p[:, 1], q[:, 1])
    first = np.clip(np.ceil(lo - 0.5), 0, h).astype(np.int64)
    stop = np.clip(np.ceil(hi - 0.5), 0, h).astype(np.int64)
    n = stop - first
    if n.sum() <= 0:
        return
    e = np.repeat(np.arange(len(p)), n)
    rows = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + first[e]
    xa, ya, xb, yb = p[e, 0], p[e, 1], q[e, 0], q[e, 1]
    xc = xa + (rows + 0.5 - ya) * (xb - xa) / (yb - ya)
    col = np.clip(np.floor(xc - 0.5).astype(np.int64) + 1, 0, w)
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    c0, c1 = int(col.min()), int(col.max())  # outside [c0, c1) every cell has an even count
    if c1 <= c0:
        return
    counts = np.zeros((r1 - r0, c1 - c0 + 1), np.uint8)  # uint8 wraps at 256: parity is all that counts
    np.add.at(counts, (rows - r0, col - c0), 1)
    out[r0:r1, c0:c1] |= np.cumsum(counts[:, :-1], axis=1, dtype=np.uint8) & 1


def rasterize_polygons(parts: list[np.ndarray], height: int, width: int, stride: int = 1) -> np.ndarray:
    """One instance's polygons (input pixels) as a uint8 0/1 mask ``(ceil(height/s), ceil(width/s))``."""
    h, w = -(-height // stride), -(-width // stride)
    mask = np.zeros((h, w), np.uint8)
    for p in parts:
        if len(p) >= 3:
            _fill_part(np.asarray(p, np.float64) / stride, mask)
    return mask


def rasterize_touching(parts: list[np.ndarray], height: int, width: int, stride: int = 1) -> np.ndarray:
    """Like :func:`rasterize_polygons` but every cell the polygon touches is set (``cv2.fillPoly``): for
    instances thinner than a cell, which cover no cell centre."""
    import cv2

    h, w = -(-height // stride), -(-width // stride)
    mask = np.zeros((h, w), np.uint8)
    rings = [np.round((p / stride - 0.5) * 256).astype(np.int32) for p in parts if len(p) >= 3]
    if rings:
        cv2.fillPoly(mask, rings, 1, lineType=cv2.LINE_8, shift=8)
    return mask


def reduce_mask(mask: np.ndarray, stride: int) -> np.ndarray:
    """A full-resolution 0/1 mask at ``stride``: a cell is set when at least half of it is covered."""
    import cv2

    if stride == 1:
        return mask.astype(np.uint8, copy=False)
    h, w = mask.shape
    hs, ws = -(-h // stride), -(-w // stride)
    padded = np.zeros((hs * stride, ws * stride), np.float32)
    padded[:h, :w] = mask
    small = cv2.resize(padded, (ws, hs), interpolation=cv2.INTER_AREA)
    return (small >= 0.5).astype(np.uint8)
