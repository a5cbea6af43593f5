"""Instance geometry as SVG paths over a thumbnail, and the colours of classes and instances.

Coordinates: the inputs are absolute pixels of the original image (polygons ``(N, 2)`` of ``(x, y)``, COCO
RLE at the image's size, boxes ``xyxy``); the outputs are SVG path strings in **thumbnail pixels**
(``scale`` = thumbnail width / image width), rounded to 0.1 px. A mask with holes becomes one path of
several rings drawn with ``fill-rule: evenodd``.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

GOLDEN = 0.6180339887


def class_hue(cls: int) -> float:
    """The hue (0..1) of class ``cls``: classes spread around the colour wheel by the golden ratio."""
    return (0.02 + cls * GOLDEN) % 1.0


def class_color(cls: int) -> str:
    """The legend colour of class ``cls`` as ``#rrggbb``."""
    return _hex(colorsys.hls_to_rgb(class_hue(cls), 0.5, 0.8))


def instance_color(cls: int, index: int) -> str:
    """Instance ``index`` of class ``cls``: the class hue, its own lightness and saturation."""
    lightness = 0.38 + 0.3 * ((index * 0.382) % 1.0)
    saturation = 0.65 + 0.35 * ((index * 0.618) % 1.0)
    return _hex(colorsys.hls_to_rgb(class_hue(cls), lightness, saturation))


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgb)


def _ring(points: np.ndarray, scale: float, min_step: float = 0.8) -> str:
    """One closed ring ``M x y L ... Z``; points closer than ``min_step`` thumbnail px to the last kept one
    are dropped (a 2,000-point COCO polygon on a 320 px thumbnail needs a few dozen)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2) * scale
    if len(pts) < 3:
        return ""
    kept = [pts[0]]
    for p in pts[1:]:
        if abs(p[0] - kept[-1][0]) + abs(p[1] - kept[-1][1]) >= min_step:
            kept.append(p)
    if len(kept) < 3:
        kept = list(pts[:3])
    coords = " ".join(f"{x:.1f} {y:.1f}" for x, y in kept)
    return f"M{coords}Z"


def polygons_path(polygons: Sequence[np.ndarray], scale: float) -> str:
    """SVG path of polygons given in image pixels."""
    return "".join(_ring(p, scale) for p in polygons)


def box_path(box: Sequence[float], scale: float) -> str:
    """SVG path of an ``xyxy`` box given in image pixels."""
    x1, y1, x2, y2 = (float(v) * scale for v in box)
    return f"M{x1:.1f} {y1:.1f}H{x2:.1f}V{y2:.1f}H{x1:.1f}Z"


def mask_path(mask: np.ndarray, scale: float) -> str:
    """SVG path of a binary mask (outer contours and holes), simplified to about half a thumbnail pixel."""
    import cv2

    m = np.ascontiguousarray(mask.astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    eps = 0.5 / max(scale, 1e-6)
    rings = []
    for c in contours:
        if len(c) >= 3:
            c = cv2.approxPolyDP(c, eps, True)
        rings.append(c.reshape(-1, 2).astype(np.float64))
    small = [r for r in rings if len(r) < 3]
    out = "".join(_ring(r, scale) for r in rings if len(r) >= 3)
    if not out and small:  # a mask of one or two pixels: its box
        pts = np.concatenate(small)
        out = box_path([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max() + 1, pts[:, 1].max() + 1], scale)
    return out


def rle_path(rle: dict, scale: float) -> str:
    """SVG path of a COCO RLE (compressed or uncompressed counts)."""
    from instseg.data.masks import rle_to_mask

    return mask_path(rle_to_mask(rle), scale)


def label_anchor(box: Sequence[float], scale: float) -> tuple[float, float]:
    """Where an instance's label goes: just above the top-left corner of its box (inside the image)."""
    x1, y1 = float(box[0]) * scale, float(box[1]) * scale
    return round(max(x1, 0.0) + 1, 1), round(max(y1 - 2, 9.0), 1)


__all__ = ["class_color", "instance_color", "class_hue", "polygons_path", "box_path", "mask_path", "rle_path",
           "label_anchor"]
