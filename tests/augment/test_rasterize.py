"""Rasterization at a stride: area and tight box against the polygon, within rasterization error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg.augment import geometry as G
from instseg.augment.rasterize import rasterize_polygons, reduce_mask
from instseg.augment.targets import mask_box


def _perimeter(p: np.ndarray) -> float:
    return float(np.linalg.norm(p - np.roll(p, 1, 0), axis=1).sum())


def _tolerance(p: np.ndarray, stride: int) -> float:
    """Centre sampling: only boundary cells can be wrong, each by under one cell, in both directions, so the
    error stays far below half a cell per cell of perimeter (cv2.fillPoly's bias is 0.5 to 0.75)."""
    return (0.25 * _perimeter(p) / stride + 2) * stride * stride


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
@pytest.mark.parametrize(
    "poly",
    [
        [(8, 8), (56, 8), (56, 40), (8, 40)],
        [(10.3, 5.7), (60.2, 30.1), (20.9, 58.4)],
        [(32, 4), (60, 32), (32, 60), (4, 32)],
    ],
)
def test_area_and_box_match_polygon(poly, stride):
    p = np.array(poly, float)
    mask = rasterize_polygons([p], 64, 64, stride)
    assert mask.shape == (64 // stride, 64 // stride)
    area_px = mask.sum() * stride * stride
    err = _tolerance(p, stride)
    assert abs(area_px - G.polygon_area(p)) <= err
    mb = mask_box(mask) * stride
    np.testing.assert_allclose(mb, G.points_bbox([p]), atol=stride * 1.5)  # a 60-degree tip loses ~1.2 cell


@settings(max_examples=50, deadline=None)
@given(
    cx=st.floats(10, 54),
    cy=st.floats(10, 54),
    r=st.floats(4, 30),
    n=st.integers(3, 9),
    phase=st.floats(0, 6.3),
    stride=st.sampled_from([1, 4]),
)
def test_random_convex_polygons(cx, cy, r, n, phase, stride):
    a = phase + np.arange(n) * 2 * np.pi / n
    p = G.clip_polygon_rect(np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1), 0, 0, 64, 64)
    mask = rasterize_polygons([p], 64, 64, stride)
    err = _tolerance(p, stride)
    assert abs(mask.sum() * stride * stride - G.polygon_area(p)) <= err
    if mask.any():
        np.testing.assert_allclose(mask_box(mask) * stride, G.points_bbox([p]), atol=stride * 1.5)


@pytest.mark.parametrize("stride,expected", [(1, 12), (2, 4), (4, 1), (8, 0)])
def test_reduce_mask_majority(stride, expected):
    m = np.zeros((8, 8), np.uint8)
    m[0:3, 0:4] = 1  # 12 pixels
    assert reduce_mask(m, stride).sum() == expected
