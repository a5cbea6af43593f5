"""instseg's box-crop retina masks against Ultralytics' own ``process_mask_native``, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.backends.ultralytics_masks import box_bounds, native_axis_matrices, native_mask_rles
from instseg.data.masks import rle_to_mask

ops = pytest.importorskip("ultralytics.utils.ops", reason="ultralytics is not installed (pip install instseg[yolo])")


def _case(mh, mw, h, w, n, seed):
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(32, mh, mw, generator=g)
    coef = torch.randn(n, 32, generator=g) * 0.3
    x1, y1 = torch.rand(n, generator=g) * w * 0.9, torch.rand(n, generator=g) * h * 0.9
    boxes = torch.stack([x1, y1, x1 + torch.rand(n, generator=g) * w * 0.6 + 0.2,
                         y1 + torch.rand(n, generator=g) * h * 0.6 + 0.2], 1)
    boxes = torch.minimum(boxes, torch.tensor([w, h, w, h], dtype=torch.float32))
    boxes[0] = torch.tensor([0, 0, w, h])  # the whole image
    boxes[1] = torch.tensor([10.0, 10.0, 10.0, 30.0])  # zero width: no pixel, dropped as by Ultralytics
    boxes[2] = torch.tensor([3.0, 4.0, 17.0, 21.0])  # integer edges
    return protos, coef, boxes


@pytest.mark.parametrize("mh,mw,h,w", [
    (80, 80, 640, 640),  # square, upsample factor 1
    (80, 80, 480, 640),  # letterboxed rows
    (64, 80, 333, 517),  # odd sizes: an upsample by 2 or 4 before the resize
    (80, 48, 612, 357),  # portrait, letterboxed columns
    (40, 40, 160, 160),  # prototype x4 = the image: no resize at all
    (20, 20, 37, 23),  # tiny image
])
def test_same_pixels_and_drops_as_process_mask_native(mh, mw, h, w):
    protos, coef, boxes = _case(mh, mw, h, w, 24, seed=mh + h)
    ref = ops.process_mask_native(protos, coef, boxes.clone(), (h, w)).numpy().astype(bool)
    rles, keep = native_mask_rles(protos, coef, boxes, h, w)
    assert keep.tolist() == ref.any((1, 2)).tolist() and not keep[1]
    assert len(rles) == int(keep.sum())
    for rle, want in zip(rles, ref[keep]):
        assert rle["size"] == [h, w]
        assert np.array_equal(rle_to_mask(rle).astype(bool), want)


def test_no_detections_and_boxes_outside_the_image():
    protos = torch.randn(32, 40, 40)
    rles, keep = native_mask_rles(protos, torch.zeros(0, 32), torch.zeros(0, 4), 160, 160)
    assert rles == [] and keep.shape == (0,)
    rles, keep = native_mask_rles(protos, torch.ones(1, 32), torch.tensor([[200.0, 200.0, 300.0, 300.0]]), 160, 160)
    assert rles == [] and keep.tolist() == [False]


def test_box_bounds_follow_crop_mask_rule():
    # crop_mask keeps columns c with x1 <= c < x2
    b = box_bounds(np.array([[0.0, 0.5, 3.0, 3.2], [-5, -5, 100, 100]]), h=10, w=8)
    assert b.tolist() == [[0, 1, 3, 4], [0, 0, 8, 10]]


def test_axis_matrices_rows_sum_to_one():
    for shape in [(80, 80, 640, 640), (64, 80, 333, 517), (40, 40, 160, 160)]:
        ry, rx = native_axis_matrices(*shape)
        assert ry.shape == (shape[2], shape[0]) and rx.shape == (shape[3], shape[1])
        assert torch.allclose(ry.sum(1), torch.ones(len(ry)), atol=1e-5)
        assert torch.allclose(rx.sum(1), torch.ones(len(rx)), atol=1e-5)
