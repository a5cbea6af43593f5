"""The working form of one training sample while it is augmented: an image plus per-instance geometry.

Every geometric step maps the image and all instances with one matrix (:func:`warp`); instances keep the
form they came in: polygons (clipped to the canvas after each step), full-resolution masks (RLE / mask
instances, warped with nearest neighbour) or a box alone (box-only instances: no mask to learn from).
Coordinates are continuous pixels of the current canvas (see :mod:`instseg.augment.geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from instseg.augment import geometry as G
from instseg.data.types import ImageRecord

FILL = 114  # grey of the padding / border, as Ultralytics


@dataclass
class Sample:
    image: np.ndarray  # H x W x 3 uint8 RGB
    cls: np.ndarray  # int64 [N]
    polys: list[
        list[np.ndarray] | None
    ]  # per instance: polygon parts ([] once cropped out); None: not polygons
    masks: list[np.ndarray | None]  # per instance: H x W uint8 mask for mask instances, else None
    boxes: np.ndarray  # float64 [N, 4] xyxy; authoritative only for box-only instances
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))  # original image -> this canvas

    def __len__(self) -> int:
        return len(self.cls)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return self.image.shape[1], self.image.shape[0]


def _decode(rle: dict) -> np.ndarray:
    from instseg.data.masks import rle_to_mask

    return rle_to_mask(rle)


def from_record(record: ImageRecord, image: np.ndarray) -> Sample:
    """The record's instances on ``image``, which is the record's image resized to any size (or not).

    Polygons are clipped to the image (a label may stray outside it); boxes of box-only instances too."""
    import cv2

    h, w = image.shape[:2]
    sx, sy = w / record.width, h / record.height
    m = G.scaling(sx, sy)
    cls, polys, masks, boxes = [], [], [], []
    for inst in record.instances:
        cls.append(inst.cls)
        box = np.zeros(4) if inst.bbox is None else np.asarray(inst.bbox, np.float64) * [sx, sy, sx, sy]
        if inst.polygons:
            parts = [
                G.clip_polygon_rect(np.asarray(p, np.float64) * (sx, sy), 0, 0, w, h) for p in inst.polygons
            ]
            polys.append([p for p in parts if len(p) >= 3])
            masks.append(None)
        elif inst.rle is not None:
            full = _decode(inst.rle)
            if full.shape != (h, w):
                full = cv2.resize(full, (w, h), interpolation=cv2.INTER_NEAREST)
            polys.append(None)
            masks.append(full)
        else:
            polys.append(None)
            masks.append(None)
        boxes.append(np.clip(box, 0, [w, h, w, h]))
    return Sample(
        image=image,
        cls=np.asarray(cls, np.int64).reshape(-1),
        polys=polys,
        masks=masks,
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        matrix=m,
    )


def _warp_image(img: np.ndarray, m: np.ndarray, out_w: int, out_h: int, nearest: bool, fill) -> np.ndarray:
    import cv2

    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    cm = G.cv2_matrix(m)
    if G.is_affine(m):
        return cv2.warpAffine(img, cm[:2], (out_w, out_h), flags=flags, borderValue=fill)
    return cv2.warpPerspective(img, cm, (out_w, out_h), flags=flags, borderValue=fill)


def transform_polys(
    polys: list[list[np.ndarray] | None], m: np.ndarray, rect: tuple[float, float, float, float]
):
    """Polygons through ``m`` then clipped to ``rect = (x0, y0, x1, y1)``; parts left empty are dropped."""
    out: list[list[np.ndarray] | None] = []
    for parts in polys:
        if parts is None:
            out.append(None)
            continue
        new = [G.clip_polygon_rect(G.apply_matrix(p, m), *rect) for p in parts]
        out.append([p for p in new if len(p) >= 3])
    return out


def transform_boxes(boxes: np.ndarray, m: np.ndarray, out_w: float, out_h: float) -> np.ndarray:
    """The boxes' corners through ``m``; the extent of each, clipped to the canvas."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], 1).reshape(-1, 2)
    pts = G.apply_matrix(corners, m).reshape(-1, 4, 2)
    out = np.concatenate([pts.min(1), pts.max(1)], 1)
    out[:, 0::2] = out[:, 0::2].clip(0, out_w)
    out[:, 1::2] = out[:, 1::2].clip(0, out_h)
    return out


def warp(s: Sample, m: np.ndarray, out_w: int, out_h: int, fill: int = FILL) -> Sample:
    """Map the image and every instance through ``m`` onto an ``out_w x out_h`` canvas."""
    if out_w == s.size[0] and out_h == s.size[1] and np.allclose(m, np.eye(3)):
        return s
    image = _warp_image(s.image, m, out_w, out_h, False, (fill, fill, fill))
    masks = [None if k is None else _warp_image(k, m, out_w, out_h, True, 0) for k in s.masks]
    return Sample(
        image=image,
        cls=s.cls,
        polys=transform_polys(s.polys, m, (0, 0, out_w, out_h)),
        masks=masks,
        boxes=transform_boxes(s.boxes, m, out_w, out_h),
        matrix=m @ s.matrix,
    )


def letterbox(s: Sample, size: int | tuple[int, int], fill: int = FILL, scaleup: bool = True) -> Sample:
    """Resize keeping the ratio (INTER_AREA down, INTER_LINEAR up) and pad, centred, to ``size x size`` or
    to ``size = (out_h, out_w)``."""
    import cv2

    w, h = s.size
    out_h, out_w = (size, size) if isinstance(size, int) else size
    new_w, new_h, left, top = G.letterbox_params(w, h, (out_h, out_w), scaleup)
    m = G.translation(left, top) @ G.scaling(new_w / w, new_h / h)
    img = s.image
    if (new_w, new_h) != (w, h):
        interp = cv2.INTER_AREA if new_w < w else cv2.INTER_LINEAR
        img = cv2.resize(img, (new_w, new_h), interpolation=interp)
    right, bottom = out_w - new_w - left, out_h - new_h - top
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(fill, fill, fill))
    masks = []
    for k in s.masks:
        if k is not None:
            k = cv2.resize(k, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
            k = cv2.copyMakeBorder(k, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
        masks.append(k)
    return Sample(
        image=img,
        cls=s.cls,
        polys=transform_polys(s.polys, m, (0, 0, out_w, out_h)),
        masks=masks,
        boxes=transform_boxes(s.boxes, m, out_w, out_h),
        matrix=m @ s.matrix,
    )


def concat(samples: list[Sample], image: np.ndarray) -> Sample:
    """The instances of several samples on one canvas ``image`` (all already in that canvas' frame)."""
    return Sample(
        image=image,
        cls=np.concatenate([s.cls for s in samples]) if samples else np.zeros(0, np.int64),
        polys=[p for s in samples for p in s.polys],
        masks=[k for s in samples for k in s.masks],
        boxes=np.concatenate([s.boxes for s in samples]).reshape(-1, 4) if samples else np.zeros((0, 4)),
        matrix=samples[0].matrix if samples else np.eye(3),
    )


def select(s: Sample, keep: np.ndarray) -> Sample:
    """The instances where ``keep`` (bool [N]) holds, every per-instance array filtered together."""
    idx = np.flatnonzero(keep)
    return Sample(
        image=s.image,
        cls=s.cls[idx],
        polys=[s.polys[i] for i in idx],
        masks=[s.masks[i] for i in idx],
        boxes=s.boxes[idx].reshape(-1, 4),
        matrix=s.matrix,
    )
