"""Masks back on the original image from their crops (augment/unmap.py) against the full-image reference:
every original pixel read with grid_sample, each mask encoded on its own with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from instseg.augment import geometry as G
from instseg.augment.dataset import ImageMeta
from instseg.augment.unmap import crop_rle_counts, mask_crops, masks_to_rles, support
from instseg.data.masks import mask_to_rle, rle_to_mask


def reference_values(masks: torch.Tensor, matrix, input_size, orig_size) -> np.ndarray:
    """The bilinear value at every original pixel centre, float64, the whole image for every mask."""
    h0, w0 = orig_size
    hi, wi = input_size
    _, hm, wm = masks.shape
    ys, xs = np.meshgrid(np.arange(h0) + 0.5, np.arange(w0) + 0.5, indexing="ij")
    p = G.apply_matrix(np.stack([xs.ravel(), ys.ravel()], 1), matrix)
    grid = np.stack([p[:, 0] * (wm / wi) / wm * 2 - 1, p[:, 1] * (hm / hi) / hm * 2 - 1], 1)
    grid = torch.from_numpy(grid.reshape(1, h0, w0, 2))
    return F.grid_sample(masks.double()[None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0].numpy()


def blobs(rng, k, hm, wm, dtype=bool):
    """k masks: ellipses of random size anywhere (some cut by the border), some empty, one full."""
    yy, xx = np.mgrid[0:hm, 0:wm]
    out = np.zeros((k, hm, wm), np.float32)
    for i in range(k):
        kind = rng.random()
        if kind < 0.15:
            continue  # empty
        if kind < 0.2:
            out[i] = 1
            continue
        cy, cx = rng.uniform(-0.1, 1.1) * hm, rng.uniform(-0.1, 1.1) * wm
        ry, rx = rng.uniform(0.5, 0.5 * hm), rng.uniform(0.5, 0.5 * wm)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        out[i] = inside * (rng.uniform(0.3, 1.0, (hm, wm)) if dtype is float else 1)
    return torch.from_numpy(out) if dtype is float else torch.from_numpy(out > 0)


def letterbox_meta(w0, h0, imgsz):
    nw, nh, left, top = G.letterbox_params(w0, h0, imgsz)
    return ImageMeta(path=None, image_id=None, orig_size=(h0, w0), input_size=(imgsz, imgsz),
                     ratio=(nw / w0, nh / h0), pad=(left, top),
                     matrix=G.translation(left, top) @ G.scaling(nw / w0, nh / h0))


CASES = [(96, 72, 64, 1), (96, 72, 64, 4), (50, 90, 128, 4), (640, 480, 320, 4), (333, 517, 160, 8),
         (37, 23, 64, 2), (1000, 10, 96, 4)]


@pytest.mark.parametrize("w0,h0,imgsz,stride", CASES)
@pytest.mark.parametrize("dtype", [bool, float])
def test_letterbox_matches_full_image_reference(w0, h0, imgsz, stride, dtype):
    rng = np.random.default_rng(w0 * 7 + h0 + stride)
    meta = letterbox_meta(w0, h0, imgsz)
    masks = blobs(rng, 24, imgsz // stride, imgsz // stride, dtype)
    got = meta.masks_to_original(masks).numpy()
    ref = reference_values(masks, meta.matrix, meta.input_size, meta.orig_size)
    assert got.shape == ref.shape == (24, h0, w0)
    differ = got != (ref >= 0.5)
    # float32 taps vs a float64 reference: only a value within rounding of the threshold may differ
    assert not differ[np.abs(ref - 0.5) > 1e-5].any()
    assert differ.sum() <= max(3, 1e-4 * differ.size)


@pytest.mark.parametrize("angle,shear,perspective", [(17.0, 0.0, 0.0), (90.0, 5.0, 0.0), (-30.0, 0.0, 1e-3)])
def test_rotated_and_projective_matrices_match_exactly(angle, shear, perspective):
    rng = np.random.default_rng(int(angle) + 100)
    w0, h0, imgsz, stride = 80, 60, 64, 4
    a, sh = np.deg2rad(angle), np.tan(np.deg2rad(shear))
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) * [[0.7], [0.7], [1]]
    m = G.translation(32, 32) @ rot @ np.array([[1, sh, 0], [0, 1, 0], [0, 0, 1.0]]) @ G.translation(-40, -30)
    m[2, 0] += perspective
    meta = ImageMeta(path=None, image_id=None, orig_size=(h0, w0), input_size=(imgsz, imgsz), ratio=(1, 1),
                     pad=(0, 0), matrix=m)
    masks = blobs(rng, 16, imgsz // stride, imgsz // stride)
    got = meta.masks_to_original(masks).numpy()
    ref = reference_values(masks, m, meta.input_size, meta.orig_size)
    differ = got != (ref >= 0.5)
    assert not differ[np.abs(ref - 0.5) > 1e-5].any()


@pytest.mark.parametrize("w0,h0,imgsz,stride", CASES[:5])
def test_rles_equal_pycocotools_per_mask(w0, h0, imgsz, stride):
    rng = np.random.default_rng(w0 + h0)
    meta = letterbox_meta(w0, h0, imgsz)
    masks = blobs(rng, 30, imgsz // stride, imgsz // stride)
    full = meta.masks_to_original(masks).numpy()
    assert meta.masks_to_rles(masks) == [mask_to_rle(f) for f in full]


@pytest.mark.parametrize(
    "h,w,y0,x0,crop",
    [
        (5, 4, 0, 0, np.ones((5, 4), bool)),  # the whole image: one run crossing every column
        (5, 4, 0, 1, np.ones((5, 2), bool)),  # top to bottom in two columns: runs join across columns
        (5, 4, 0, 3, np.ones((5, 1), bool)),  # the last column
        (5, 4, 4, 3, np.ones((1, 1), bool)),  # the last pixel
        (5, 4, 0, 0, np.ones((1, 1), bool)),  # the first pixel: counts start with 0 zeros
        (6, 3, 1, 0, np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0], [1, 0, 1]], bool)),
        (6, 3, 0, 0, np.zeros((6, 3), bool)),  # nothing set
    ],
)
def test_crop_rle_counts_edge_cases(h, w, y0, x0, crop):
    canvas = np.zeros((h, w), np.uint8)
    canvas[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    counts = crop_rle_counts(crop, y0, x0, h, w)
    flat = canvas.ravel(order="F")
    assert sum(counts) == h * w and all(c > 0 for c in counts[1:])
    expect = np.repeat(np.arange(len(counts)) % 2, counts)
    np.testing.assert_array_equal(expect, flat)
    from instseg.data.masks import coco_mask_api, rle_as_text

    rle = rle_as_text(coco_mask_api().frPyObjects({"size": [h, w], "counts": counts}, h, w))
    assert rle == mask_to_rle(canvas)
    np.testing.assert_array_equal(rle_to_mask(rle), canvas)


def test_empty_and_degenerate_inputs():
    meta = letterbox_meta(40, 30, 32)
    assert meta.masks_to_rles(torch.zeros(0, 8, 8, dtype=torch.bool)) == []
    assert tuple(meta.masks_to_original(torch.zeros(0, 8, 8)).shape) == (0, 30, 40)
    rles = meta.masks_to_rles(torch.zeros(3, 8, 8, dtype=torch.bool))
    assert rles == [mask_to_rle(np.zeros((30, 40), np.uint8))] * 3
    # a mask whose only cells lie in the letterbox padding maps to nothing
    m = torch.zeros(1, 32, 32, dtype=torch.bool)
    m[0, 0, :] = True  # the grey band above a 40x30 image letterboxed to 32x32
    assert not meta.masks_to_original(m).any()
    assert list(mask_crops(m, meta.matrix, meta.input_size, meta.orig_size)) == []


def test_support_boxes():
    m = np.zeros((3, 5, 6), bool)
    m[1, 2:4, 1] = True
    m[2, 0, 5] = m[2, 4, 0] = True
    np.testing.assert_array_equal(support(m), [[-1, -1, -1, -1], [1, 2, 1, 3], [0, 0, 5, 4]])


def test_to_image_prediction_uses_the_crops():
    """The validation path's RLEs decode to the same masks as the full-image reference."""
    from instseg.engine.validate import to_image_prediction

    rng = np.random.default_rng(3)
    meta = letterbox_meta(200, 150, 128)
    masks = blobs(rng, 12, 128, 128)
    out = {"boxes": torch.zeros(12, 4), "scores": torch.rand(12), "labels": torch.zeros(12, dtype=torch.long),
           "masks": masks}
    pred = to_image_prediction(out, meta)
    ref = reference_values(masks, meta.matrix, meta.input_size, meta.orig_size)
    for rle, r in zip(pred.masks, ref):
        dec = rle_to_mask(rle).astype(bool)
        assert not (dec != (r >= 0.5))[np.abs(r - 0.5) > 1e-5].any()
