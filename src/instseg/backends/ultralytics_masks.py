"""Ultralytics' retina (original-resolution) masks, computed on each detection's box alone, straight to RLE.

Ultralytics' ``retina_masks=True`` path (``ops.process_mask_native``) builds every mask as a full
``N x H x W`` stack: the prototype-resolution logits upsampled bilinearly by 1, 2 or 4, the letterbox padding
cut off, resized bilinearly to the original image, thresholded at 0 and zeroed outside the box. For a
validation pass at ``conf=0.001`` (about 100 detections a 640x640 image) that stack costs three times the
model's forward pass, and the RLE encoding of the full masks as much again.

Both resizes are linear and act on rows and columns separately, so the whole mapping is
``R_y @ logits @ R_x.T`` with two small matrices per image shape (built here by applying ``F.interpolate`` to
an identity, so their weights are PyTorch's). Only the box's rows of ``R_y`` and columns of ``R_x`` are
needed, and they touch a band of prototype cells: each mask costs its box, and its RLE is assembled from the
box crop (:func:`instseg.augment.unmap.crop_rle_counts`). Same pixels as Ultralytics up to float rounding of
logits at exactly 0 (``tests/backends/test_ultralytics_masks.py`` compares the two on random prototypes).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def _interp_matrix(n_in: int, n_out: int):
    """``(n_out, n_in)`` weights of a 1-D bilinear resize (``F.interpolate``, ``align_corners=False``)."""
    import torch
    import torch.nn.functional as F

    eye = torch.eye(n_in, dtype=torch.float32).reshape(1, 1, n_in, n_in)
    return F.interpolate(eye, size=(n_out, n_in), mode="bilinear", align_corners=False)[0, 0]


@lru_cache(maxsize=64)
def native_axis_matrices(mh: int, mw: int, h: int, w: int):
    """``(R_y (h, mh), R_x (w, mw))``: Ultralytics' ``process_mask_native`` mapping of ``mh x mw`` prototype
    logits onto an ``h x w`` original image (the arithmetic of its ``scale_masks``, Ultralytics 8.4)."""
    import torch

    gain = min(4 * mh / h, 4 * mw / w)
    pad = (4 * mh - max(round(h * gain), 1)) | (4 * mw - max(round(w * gain), 1))
    f = 4 // math.gcd(4, pad | pad // 2)  # the smallest upsample that cuts the letterbox on whole pixels
    up_y = _interp_matrix(mh, f * mh) if f > 1 else torch.eye(mh)
    up_x = _interp_matrix(mw, f * mw) if f > 1 else torch.eye(mw)
    ih, iw = f * mh, f * mw
    if (ih, iw) == (h, w):
        return up_y.contiguous(), up_x.contiguous()
    g = min(ih / h, iw / w)
    content_h, content_w = max(round(h * g), 1), max(round(w * g), 1)
    top, left = round((ih - content_h) / 2 - 0.1), round((iw - content_w) / 2 - 0.1)
    ry = _interp_matrix(content_h, h) @ up_y[top:top + content_h]
    rx = _interp_matrix(content_w, w) @ up_x[left:left + content_w]
    return ry.contiguous(), rx.contiguous()


@lru_cache(maxsize=64)
def _bands(mh: int, mw: int, h: int, w: int):
    """Per original row (column): the first and one-past-last prototype row (column) with a non-zero weight."""
    out = []
    for r in native_axis_matrices(mh, mw, h, w):
        nz = (r != 0).numpy()
        lo = nz.argmax(1)
        hi = nz.shape[1] - nz[:, ::-1].argmax(1)
        out.append((lo, hi))
    return out


def box_bounds(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """``(N, 4)`` int ``[c0, r0, c1, r1]`` (exclusive ends) of the pixels ``crop_mask`` keeps: ``x1 <= c < x2``."""
    b = np.ceil(np.asarray(boxes, np.float64).reshape(-1, 4))
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    return b.astype(np.int64)


def native_mask_rles(protos, coefficients, boxes, h: int, w: int) -> tuple[list[dict], np.ndarray]:
    """Compressed RLEs of Ultralytics' retina masks and the boolean ``keep`` of the detections whose mask is
    not empty (Ultralytics drops the others). ``protos`` ``(C, mh, mw)``, ``coefficients`` ``(N, C)``, ``boxes``
    ``(N, 4)`` xyxy on the ``h x w`` original image."""
    import torch

    from instseg.augment.unmap import crop_rle_counts
    from instseg.data.masks import coco_mask_api, rle_as_text

    n = int(coefficients.shape[0])
    keep = np.zeros(n, bool)
    if not n:
        return [], keep
    c, mh, mw = (int(v) for v in protos.shape)
    ry, rx = native_axis_matrices(mh, mw, h, w)
    (ylo, yhi), (xlo, xhi) = _bands(mh, mw, h, w)
    counts = []
    with torch.no_grad():
        # prototype-resolution logits of every detection: one (N, C) @ (C, mh*mw) product, as Ultralytics does
        cells = (coefficients.float() @ protos.float().reshape(c, -1)).reshape(n, mh, mw).cpu()
        for k, (c0, r0, c1, r1) in enumerate(box_bounds(boxes.cpu().numpy(), h, w)):
            if c1 <= c0 or r1 <= r0:
                continue
            a, b = int(ylo[r0]), int(yhi[r1 - 1])
            d0, d1 = int(xlo[c0]), int(xhi[c1 - 1])
            logits = ry[r0:r1, a:b] @ (cells[k, a:b, d0:d1] @ rx[c0:c1, d0:d1].T)
            crop = (logits > 0).numpy()
            if crop.any():
                keep[k] = True
                counts.append(crop_rle_counts(crop, int(r0), int(c0), h, w))
    if not counts:
        return [], keep
    encoded = coco_mask_api().frPyObjects([{"size": [h, w], "counts": cnt} for cnt in counts], h, w)
    return [rle_as_text(e) for e in encoded], keep


@lru_cache(maxsize=1)
def predictor_class():
    """A ``SegmentationPredictor`` whose results carry boxes on the original image and, instead of masks,
    ``instseg_masks = (protos, coefficients)`` for :func:`native_mask_rles` (imports Ultralytics)."""
    from ultralytics.engine.results import Results
    from ultralytics.models.yolo.segment import SegmentationPredictor
    from ultralytics.utils import ops

    class BoxCropMaskPredictor(SegmentationPredictor):
        def construct_result(self, pred, img, orig_img, img_path, proto):
            if pred.shape[0]:
                pred[:, :4] = ops.scale_boxes(img.shape[2:], pred[:, :4], orig_img.shape)
            result = Results(orig_img, path=img_path, names=self.model.names, boxes=pred[:, :6])
            result.instseg_masks = (proto, pred[:, 6:])
            return result

    return BoxCropMaskPredictor


__all__ = ["native_axis_matrices", "box_bounds", "native_mask_rles", "predictor_class"]
