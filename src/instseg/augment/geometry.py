"""Pure geometry of the augmentations: 3x3 matrices, points through them, polygons clipped to a rectangle.

Conventions: coordinates are *continuous* absolute pixels where pixel ``(row i, col j)`` covers the square
``[j, j+1] x [i, i+1]`` (the COCO convention, see :mod:`instseg.data.masks`). A matrix ``M`` maps a point
``(x, y, 1)`` of the source image to ``M @ (x, y, 1)`` in the output (divided by the third coordinate when
``M`` has a perspective row). OpenCV's warps index pixel centres at integers; :func:`cv2_matrix` converts.
"""

from __future__ import annotations

import math

import numpy as np


def translation(tx: float, ty: float) -> np.ndarray:
    """Translation by ``(tx, ty)`` pixels."""
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def scaling(sx: float, sy: float) -> np.ndarray:
    """Scaling about the origin (the top-left corner of the image)."""
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def flip_lr(width: float) -> np.ndarray:
    """Horizontal flip of an image ``width`` pixels wide: ``x -> width - x``."""
    return np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def flip_ud(height: float) -> np.ndarray:
    """Vertical flip of an image ``height`` pixels high: ``y -> height - y``."""
    return np.array([[1.0, 0.0, 0.0], [0.0, -1.0, height], [0.0, 0.0, 1.0]])


def letterbox_params(
    width: int, height: int, size: int | tuple[int, int], scaleup: bool = True
) -> tuple[int, int, int, int]:
    """Resize-keeping-ratio to fit ``size`` (square side, or ``(out_h, out_w)``), centred:
    ``(new_w, new_h, pad_left, pad_top)`` in pixels.

    The new size is rounded to whole pixels, so the per-axis scales are ``new_w / width`` and
    ``new_h / height`` (they differ from the ratio by under one pixel over the image).
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    r = min(out_w / width, out_h / height)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = max(1, min(out_w, round(width * r))), max(1, min(out_h, round(height * r)))
    return new_w, new_h, (out_w - new_w) // 2, (out_h - new_h) // 2


def letterbox_matrix(
    width: int, height: int, size: int | tuple[int, int], scaleup: bool = True
) -> np.ndarray:
    """The matrix of :func:`letterbox_params` (original continuous pixels -> letterboxed pixels)."""
    new_w, new_h, left, top = letterbox_params(width, height, size, scaleup)
    return translation(left, top) @ scaling(new_w / width, new_h / height)


def random_affine_matrix(
    rng: np.random.Generator,
    width: int,
    height: int,
    out_width: int,
    out_height: int,
    *,
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.0,
    perspective: float = 0.0,
) -> np.ndarray:
    """Ultralytics' ``random_perspective`` as one matrix: centre, perspective, rotate+scale, shear, translate.

    Maps a ``width x height`` source (e.g. a 2*imgsz mosaic canvas) to an ``out_width x out_height`` output:
    the source centre goes to the output centre, then a random translation of up to ``translate`` of the
    output size. ``degrees``/``shear`` in degrees, ``scale`` is the +/- gain range.
    """
    c = translation(-width / 2.0, -height / 2.0)
    p = np.eye(3)
    p[2, 0] = rng.uniform(-perspective, perspective)
    p[2, 1] = rng.uniform(-perspective, perspective)
    angle = rng.uniform(-degrees, degrees)
    s = rng.uniform(1 - scale, 1 + scale)
    co, si = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    r = np.array([[s * co, s * si, 0.0], [-s * si, s * co, 0.0], [0.0, 0.0, 1.0]])
    sh = np.eye(3)
    sh[0, 1] = math.tan(math.radians(rng.uniform(-shear, shear)))
    sh[1, 0] = math.tan(math.radians(rng.uniform(-shear, shear)))
    t = translation(
        rng.uniform(0.5 - translate, 0.5 + translate) * out_width,
        rng.uniform(0.5 - translate, 0.5 + translate) * out_height,
    )
    return t @ sh @ r @ p @ c


def is_affine(m: np.ndarray) -> bool:
    """True when ``m`` has no perspective row (``[0, 0, 1]``)."""
    return bool(m[2, 0] == 0.0 and m[2, 1] == 0.0 and m[2, 2] == 1.0)


def cv2_matrix(m: np.ndarray) -> np.ndarray:
    """``m`` (continuous pixels) in OpenCV's convention, where pixel centres are at integer coordinates."""
    return translation(-0.5, -0.5) @ m @ translation(0.5, 0.5)


def apply_matrix(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Points ``(N, 2)`` (x, y) through ``m``; float64 ``(N, 2)``."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    out = pts @ m[:2, :2].T + m[:2, 2]
    if not is_affine(m):
        w = pts @ m[2, :2] + m[2, 2]
        out = out / w[:, None]
    return out


def _clip_half_plane(pts: np.ndarray, axis: int, limit: float, keep_below: bool) -> np.ndarray:
    """One Sutherland-Hodgman pass, vectorized: the part of the closed polygon on one side of a line."""
    inside = pts[:, axis] <= limit if keep_below else pts[:, axis] >= limit
    if inside.all():
        return pts
    if not inside.any():
        return pts[:0]
    prev = np.concatenate((pts[-1:], pts[:-1]))
    prev_in = np.concatenate((inside[-1:], inside[:-1]))
    cross = inside != prev_in
    d = pts[:, axis] - prev[:, axis]
    t = np.divide(limit - prev[:, axis], d, out=np.zeros_like(d), where=cross)
    hit = prev + t[:, None] * (pts - prev)
    hit[:, axis] = limit
    both = np.stack([hit, pts], axis=1).reshape(-1, 2)  # per vertex: [crossing point, vertex]
    take = np.stack([cross, inside], axis=1).reshape(-1)
    return both[take]


def clip_polygon_rect(poly: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Clip a polygon ``(N, 2)`` to the rectangle ``[x0, x1] x [y0, y1]`` (Sutherland-Hodgman, vectorized).

    The result covers exactly the part of the polygon inside the rectangle (a concave polygon may gain
    zero-area runs along the border). ``(0, 2)`` when nothing is inside.
    """
    pts = np.asarray(poly, np.float64).reshape(-1, 2)
    if (
        len(pts)
        and pts[:, 0].min() >= x0
        and pts[:, 0].max() <= x1
        and pts[:, 1].min() >= y0
        and pts[:, 1].max() <= y1
    ):
        return pts
    for axis, limit, below in ((0, x0, False), (0, x1, True), (1, y0, False), (1, y1, True)):
        if len(pts) == 0:
            break
        pts = _clip_half_plane(pts, axis, limit, below)
    return pts


def polygon_area(poly: np.ndarray) -> float:
    """Unsigned shoelace area (pixels^2) of one polygon ``(N, 2)``; 0 for fewer than 3 points."""
    p = np.asarray(poly, np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]) + x[-1] * y[0] - y[-1] * x[0]) / 2.0)


def points_bbox(parts: list[np.ndarray]) -> np.ndarray:
    """``xyxy`` extent of the points of all ``parts``; zeros when there are none."""
    pts = [p for p in parts if len(p)]
    if not pts:
        return np.zeros(4)
    allp = np.concatenate(pts)
    return np.concatenate([allp.min(0), allp.max(0)])
