"""Predicted masks back on the original image, touching only the pixels a mask can reach.

A mask ``[h, w]`` predicted on a network input (any stride of it) is read at every original pixel centre
mapped into it, bilinearly with zero padding (``grid_sample``'s rule, ``align_corners=False``), and
thresholded. A bilinear read is non-zero only next to a non-zero cell, so each mask needs just the original
pixels whose centre falls within one cell of its support: that crop is all this module computes, and the
COCO RLE of the whole image is assembled from the crop's runs (:func:`crop_rle_counts`) without a
full-size array. A validation pass of an early model (100 near-empty masks per image) costs next to nothing.

For the letterbox (and any axis-aligned, positive-scale) mapping the bilinear read is separable: two 1-D
gathers with weights, the same formula as ``grid_sample`` up to float rounding. Any other matrix (rotations,
a projective warp) samples the crop with ``grid_sample`` itself.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def _axis_taps(n_out: int, scale: float, shift: float, n_mask: int):
    """For each of ``n_out`` original pixels along one axis: the continuous mask index (``grid_sample``'s
    unnormalized coordinate), the two taps into the mask padded by one zero cell on each side, and the weight
    of the second tap. Computed in float32, as ``grid_sample`` does."""
    g = (((np.arange(n_out) + 0.5) * scale + shift) / n_mask * 2 - 1).astype(np.float32)
    ix = ((g + np.float32(1)) * np.float32(n_mask) - np.float32(1)) / np.float32(2)
    f = np.floor(ix)
    w1 = (ix - f).astype(np.float32)
    i0 = np.clip(f.astype(np.int64) + 1, 0, n_mask + 1)
    i1 = np.clip(f.astype(np.int64) + 2, 0, n_mask + 1)
    return ix, i0, i1, w1


def support(masks: np.ndarray) -> np.ndarray:
    """``(K, 4)`` int64 ``[c0, r0, c1, r1]`` (inclusive) of each mask's non-zero cells; ``-1`` rows if empty."""
    k = masks.shape[0]
    out = np.full((k, 4), -1, np.int64)
    rows, cols = masks.any(2), masks.any(1)
    has = rows.any(1)
    if has.any():
        out[has, 0] = cols[has].argmax(1)
        out[has, 1] = rows[has].argmax(1)
        out[has, 2] = cols.shape[1] - 1 - cols[has, ::-1].argmax(1)
        out[has, 3] = rows.shape[1] - 1 - rows[has, ::-1].argmax(1)
    return out


def is_axis_aligned(matrix: np.ndarray) -> bool:
    """Scale + translation with positive scales (every letterboxed validation sample)."""
    m = np.asarray(matrix, np.float64)
    return bool(m[0, 1] == 0 and m[1, 0] == 0 and m[2, 0] == 0 and m[2, 1] == 0 and m[2, 2] == 1
                and m[0, 0] > 0 and m[1, 1] > 0)


def mask_crops(masks, matrix: np.ndarray, input_size: tuple[int, int], orig_size: tuple[int, int],
               threshold: float = 0.5) -> Iterator[tuple[int, int, int, int, int, np.ndarray]]:
    """For every mask with a reachable pixel: ``(k, y0, y1, x0, x1, crop)``, ``crop`` the bool
    ``[y1-y0, x1-x0]`` block of the original image; every pixel outside it is False.

    ``masks``: ``[K, h, w]`` bool or float (numpy or torch) at the input resolution or any stride of it;
    ``matrix`` maps original pixels to input pixels.
    """
    m = masks.detach().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks)
    if m.ndim != 3 or m.shape[0] == 0:
        return
    if m.dtype == np.bool_:
        m = m.view(np.uint8)
    elif not np.issubdtype(m.dtype, np.floating):
        m = (m != 0).view(np.uint8)
    else:
        m = m.astype(np.float32, copy=False)
    h0, w0 = (int(v) for v in orig_size)
    hi, wi = (int(v) for v in input_size)
    k, hm, wm = m.shape
    boxes = support(m)
    if is_axis_aligned(matrix):
        yield from _separable_crops(m, boxes, np.asarray(matrix, np.float64), (hi, wi), (h0, w0), threshold)
    else:
        yield from _general_crops(m, boxes, np.asarray(matrix, np.float64), (hi, wi), (h0, w0), threshold)


def _separable_crops(m, boxes, matrix, input_size, orig_size, threshold):
    (hi, wi), (h0, w0) = input_size, orig_size
    _, hm, wm = m.shape
    ix, xi0, xi1, wx = _axis_taps(w0, matrix[0, 0] * wm / wi, matrix[0, 2] * wm / wi, wm)
    iy, yi0, yi1, wy = _axis_taps(h0, matrix[1, 1] * hm / hi, matrix[1, 2] * hm / hi, hm)
    pad = np.zeros((hm + 2, wm + 2), m.dtype)
    for k in np.flatnonzero(boxes[:, 0] >= 0):
        c0, r0, c1, r1 = boxes[k]
        # pixels whose left tap lies in [c0 - 1, c1]: the only ones that read a non-zero cell (ix increases)
        x0, x1 = np.searchsorted(ix, c0 - 1, "left"), np.searchsorted(ix, c1 + 1, "left")
        y0, y1 = np.searchsorted(iy, r0 - 1, "left"), np.searchsorted(iy, r1 + 1, "left")
        if x0 >= x1 or y0 >= y1:
            continue
        pad[1:-1, 1:-1] = m[k]
        ya, yb = yi0[y0:y1], yi1[y0:y1]
        lo, hi_ = int(ya[0]), int(yb[-1]) + 1
        rows = pad[lo:hi_]
        a, b, w = rows[:, xi0[x0:x1]], rows[:, xi1[x0:x1]], wx[x0:x1]
        across = a * (np.float32(1) - w) + b * w  # [rows, crop width], float32
        v = wy[y0:y1, None]
        val = across[ya - lo] * (np.float32(1) - v) + across[yb - lo] * v
        crop = val >= threshold
        if crop.any():
            yield int(k), int(y0), int(y1), int(x0), int(x1), crop


def _general_crops(m, boxes, matrix, input_size, orig_size, threshold):
    import torch
    import torch.nn.functional as F

    from instseg.augment.geometry import apply_matrix, is_affine

    (hi, wi), (h0, w0) = input_size, orig_size
    _, hm, wm = m.shape
    ys, xs = np.meshgrid(np.arange(h0) + 0.5, np.arange(w0) + 0.5, indexing="ij")
    p = apply_matrix(np.stack([xs.ravel(), ys.ravel()], 1), matrix)
    gx = p[:, 0] * (wm / wi) / wm * 2 - 1  # continuous mask coordinate -> [-1, 1], align_corners=False
    gy = p[:, 1] * (hm / hi) / hm * 2 - 1
    grid = torch.from_numpy(np.stack([gx, gy], 1).reshape(1, h0, w0, 2).astype(np.float32))
    inv = np.linalg.inv(matrix)
    affine = is_affine(matrix)
    for k in np.flatnonzero(boxes[:, 0] >= 0):
        if affine:  # the support grown by one cell, in input pixels, mapped back; one pixel of margin
            c0, r0, c1, r1 = boxes[k]
            corners = np.array([[c0 - 0.5, r0 - 0.5], [c1 + 1.5, r0 - 0.5], [c1 + 1.5, r1 + 1.5],
                                [c0 - 0.5, r1 + 1.5]]) * [wi / wm, hi / hm]
            q = apply_matrix(corners, inv)
            x0 = max(0, int(np.floor(q[:, 0].min() - 0.5)) - 1)
            x1 = min(w0, int(np.ceil(q[:, 0].max() - 0.5)) + 2)
            y0 = max(0, int(np.floor(q[:, 1].min() - 0.5)) - 1)
            y1 = min(h0, int(np.ceil(q[:, 1].max() - 0.5)) + 2)
        else:
            x0, x1, y0, y1 = 0, w0, 0, h0
        if x0 >= x1 or y0 >= y1:
            continue
        src = torch.from_numpy(m[k].astype(np.float32))[None, None]
        val = F.grid_sample(src, grid[:, y0:y1, x0:x1], mode="bilinear", padding_mode="zeros",
                            align_corners=False)[0, 0]
        crop = (val >= threshold).numpy()
        if crop.any():
            yield int(k), y0, y1, x0, x1, crop


def crop_rle_counts(crop: np.ndarray, y0: int, x0: int, height: int, width: int) -> list[int]:
    """Uncompressed COCO RLE counts (column-major, zeros first) of a ``height x width`` image that is False
    everywhere but ``crop`` placed at ``(y0, x0)``; the same runs ``pycocotools.mask.encode`` gives."""
    ch, cw = crop.shape
    col = np.zeros((cw, ch + 2), bool)  # each crop column with a False cell above and below
    col[:, 1:-1] = crop.T
    flat = col.ravel()
    t = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # positions where the value changes (bool: fast nonzero)
    c, r = np.divmod(t, ch + 2)
    pos = (x0 + c) * height + y0 + r - 1  # canvas index of the first pixel of the new value
    starts, ends = pos[0::2], pos[1::2]
    if len(starts) > 1:  # a run that ends at the bottom of one column and restarts at the top of the next
        joined = starts[1:] == ends[:-1]
        if joined.any():
            keep_s = np.concatenate([[True], ~joined])
            keep_e = np.concatenate([~joined, [True]])
            starts, ends = starts[keep_s], ends[keep_e]
    edges = np.empty(2 * len(starts) + 2, np.int64)
    edges[0], edges[-1] = 0, height * width
    edges[1:-1:2], edges[2:-1:2] = starts, ends
    counts = np.diff(edges).tolist()
    if len(counts) > 1 and counts[-1] == 0:  # the image ends inside a run: no trailing zeros (as encode)
        counts.pop()
    return counts


def masks_to_rles(masks, matrix: np.ndarray, input_size: tuple[int, int], orig_size: tuple[int, int],
                  threshold: float = 0.5) -> list[dict]:
    """The compressed COCO RLE (``str`` counts) of every mask on the original image, in order."""
    from instseg.data.masks import coco_mask_api, rle_as_text

    h0, w0 = (int(v) for v in orig_size)
    n = int(masks.shape[0]) if getattr(masks, "ndim", 0) == 3 else 0
    counts: list[list[int]] = [[h0 * w0]] * n
    for k, y0, _y1, x0, _x1, crop in mask_crops(masks, matrix, input_size, orig_size, threshold):
        counts[k] = crop_rle_counts(crop, y0, x0, h0, w0)
    if not n:
        return []
    api = coco_mask_api()
    encoded = api.frPyObjects([{"size": [h0, w0], "counts": c} for c in counts], h0, w0)
    return [rle_as_text(e) for e in encoded]


__all__ = ["support", "is_axis_aligned", "mask_crops", "crop_rle_counts", "masks_to_rles"]
