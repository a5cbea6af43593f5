"""Mosaic (4 images on a ``2*imgsz`` canvas around a random centre, as Ultralytics) and mixup."""

from __future__ import annotations

import numpy as np

from instseg.augment import geometry as G
from instseg.augment.sample import FILL, Sample, concat, transform_boxes, transform_polys


def tile_regions(
    xc: int, yc: int, w: int, h: int, k: int, canvas: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tile ``k`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of a ``w x h`` image touching the
    centre ``(xc, yc)``: its region on the canvas ``(x1, y1, x2, y2)`` and the matching region of the image."""
    if k == 0:
        a = (max(xc - w, 0), max(yc - h, 0), xc, yc)
        b = (w - (a[2] - a[0]), h - (a[3] - a[1]), w, h)
    elif k == 1:
        a = (xc, max(yc - h, 0), min(xc + w, canvas), yc)
        b = (0, h - (a[3] - a[1]), min(w, a[2] - a[0]), h)
    elif k == 2:
        a = (max(xc - w, 0), yc, xc, min(canvas, yc + h))
        b = (w - (a[2] - a[0]), 0, w, min(a[3] - a[1], h))
    else:
        a = (xc, yc, min(xc + w, canvas), min(canvas, yc + h))
        b = (0, 0, min(w, a[2] - a[0]), min(a[3] - a[1], h))
    return a, b


def mosaic_center(rng: np.random.Generator, imgsz: int) -> tuple[int, int]:
    """The mosaic centre ``(xc, yc)``, uniform in ``[imgsz/2, 3*imgsz/2)`` on both axes (Ultralytics)."""
    yc, xc = (int(v) for v in rng.uniform(imgsz // 2, 2 * imgsz - imgsz // 2, 2))
    return xc, yc


def mosaic4(
    tiles: list[Sample], imgsz: int, center: tuple[int, int], roi: tuple[int, int, int, int] | None = None
) -> Sample:
    """Four samples (each at most ``imgsz`` on its long side) on a ``2*imgsz`` square canvas (grey 114),
    touching at ``center``; each tile's instances are translated and clipped to the tile's region.

    ``roi = (x0, y0, x1, y1)``: build only that window of the canvas (the part a later warp reads); the
    returned sample's frame is then the window's (canvas coordinates minus ``(x0, y0)``).
    """
    size = 2 * imgsz
    xc, yc = center
    x0, y0, x1, y1 = roi if roi is not None else (0, 0, size, size)
    canvas = np.full((y1 - y0, x1 - x0, 3), FILL, np.uint8)
    placed = []
    for k, t in enumerate(tiles):
        w, h = t.size
        (x1a, y1a, x2a, y2a), (x1b, y1b, _, _) = tile_regions(xc, yc, w, h, k, size)
        dx, dy = x1a - x1b - x0, y1a - y1b - y0  # tile pixel -> window pixel
        ra = (max(x1a - x0, 0), max(y1a - y0, 0), min(x2a - x0, x1 - x0), min(y2a - y0, y1 - y0))
        if ra[2] <= ra[0] or ra[3] <= ra[1]:
            continue  # the tile does not reach the window
        canvas[ra[1] : ra[3], ra[0] : ra[2]] = t.image[ra[1] - dy : ra[3] - dy, ra[0] - dx : ra[2] - dx]
        m = G.translation(dx, dy)
        masks = []
        for full in t.masks:
            if full is not None:
                big = np.zeros(canvas.shape[:2], np.uint8)
                big[ra[1] : ra[3], ra[0] : ra[2]] = full[ra[1] - dy : ra[3] - dy, ra[0] - dx : ra[2] - dx]
                full = big
            masks.append(full)
        boxes = transform_boxes(t.boxes, m, canvas.shape[1], canvas.shape[0])
        boxes[:, 0::2] = boxes[:, 0::2].clip(ra[0], ra[2])
        boxes[:, 1::2] = boxes[:, 1::2].clip(ra[1], ra[3])
        placed.append(
            Sample(
                image=canvas,
                cls=t.cls,
                polys=transform_polys(t.polys, m, ra),
                masks=masks,
                boxes=boxes,
                matrix=m @ t.matrix,
            )
        )
    out = concat(placed, canvas)
    if not placed:
        out.matrix = tiles[0].matrix
    return out


def window_for(m: np.ndarray, out_w: int, out_h: int, size: int) -> tuple[int, int, int, int]:
    """The integer window of a ``size x size`` canvas that ``m`` (canvas -> output) maps onto the output:
    the extent of the output corners mapped back, one pixel of margin for interpolation, within the canvas."""
    corners = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], np.float64)
    back = G.apply_matrix(corners, np.linalg.inv(m))
    x0, y0 = np.floor(back.min(0)).astype(int) - 1
    x1, y1 = np.ceil(back.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(size, x1), min(size, y1)
    if x1 <= x0 or y1 <= y0:
        return 0, 0, 1, 1
    return int(x0), int(y0), int(x1), int(y1)


def mixup(a: Sample, b: Sample, rng: np.random.Generator) -> Sample:
    """Blend two samples of the same canvas size with ratio ~ Beta(32, 32) (Ultralytics); keep all instances."""
    r = rng.beta(32.0, 32.0)
    image = (a.image.astype(np.float32) * r + b.image.astype(np.float32) * (1 - r)).astype(np.uint8)
    return concat([a, b], image)
