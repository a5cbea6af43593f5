"""The building blocks of image cards shared by the dataset, evaluation and comparison pages: a ground-truth
instance as geometry (path, kind, RLE, box, area) and a thumbnail with its SVG overlay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from instseg.data.types import ImageRecord, Instance
from instseg.report.geometry import box_path, polygons_path, rle_path
from instseg.report.html import esc
from instseg.report.thumbs import Thumb

SMALL, MEDIUM = 32 ** 2, 96 ** 2  # COCO's area ranges (pixels)


def size_range(area: float) -> str:
    """COCO's size range of a mask area: small < 32^2 <= medium < 96^2 <= large."""
    return "small" if area < SMALL else "medium" if area < MEDIUM else "large"


@dataclass
class GtShape:
    """One ground-truth instance ready to draw and to match."""

    cls: int
    kind: str  # "polygon", "polygons", "rle", "box"
    rle: dict  # at the image size (box-only: the box)
    box: np.ndarray  # xyxy, image pixels
    area: int  # mask pixels
    crowd: bool
    path: str  # SVG path in thumbnail pixels


def gt_shape(inst: Instance, rec: ImageRecord, scale: float) -> GtShape:
    from instseg.data.coco import instance_bbox
    from instseg.data.masks import instance_to_rle, rle_area

    rle = instance_to_rle(inst, rec.height, rec.width)
    box = np.asarray(instance_bbox(inst, rle, rec.height, rec.width), np.float64)
    if inst.polygons:
        kind = "polygon" if len(inst.polygons) == 1 else "polygons"
        path = polygons_path(inst.polygons, scale)
    elif inst.rle is not None:
        kind, path = "rle", rle_path(rle, scale)
    else:
        kind, path = "box", box_path(box, scale)
    return GtShape(cls=int(inst.cls), kind=kind, rle=rle, box=box, area=rle_area(rle), crowd=bool(inst.iscrowd),
                   path=path)


def thumb_block(thumb: Thumb, svg_inner: str, prefix: str = "../") -> str:
    """The thumbnail image (``prefix`` leads from the page to the report folder) under its SVG overlay."""
    w, h = thumb.width, thumb.height
    return (f'<div class="thumb" style="--w:{w}px"><img src="{esc(prefix + thumb.rel)}" width="{w}" height="{h}" alt="">'
            f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">'
            f"{svg_inner}</svg></div>")


def box_text(box) -> str:
    return ", ".join(f"{float(v):.0f}" for v in box)


__all__ = ["SMALL", "MEDIUM", "size_range", "GtShape", "gt_shape", "thumb_block", "box_text"]
