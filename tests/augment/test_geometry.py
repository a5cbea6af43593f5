"""Pure geometry: matrices, vectorized polygon clipping (against instseg.data.masks' loop version), areas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg.augment import geometry as G
from instseg.data.masks import clip_polygon


@pytest.mark.parametrize(
    "w,h,size,expected",
    [
        (640, 480, 640, (640, 480, 0, 80)),
        (480, 640, 320, (240, 320, 40, 0)),
        (100, 100, 64, (64, 64, 0, 0)),
        (30, 10, 64, (64, 21, 0, 21)),
    ],
)
def test_letterbox_params(w, h, size, expected):
    assert G.letterbox_params(w, h, size) == expected


@pytest.mark.parametrize(
    "m,point,expected",
    [
        (G.flip_lr(100), (10.0, 5.0), (90.0, 5.0)),
        (G.flip_ud(50), (10.0, 5.0), (10.0, 45.0)),
        (G.translation(3, -2) @ G.scaling(2, 0.5), (10.0, 10.0), (23.0, 3.0)),
        (G.letterbox_matrix(640, 480, 320), (640.0, 480.0), (320.0, 280.0)),
    ],
)
def test_apply_matrix(m, point, expected):
    np.testing.assert_allclose(G.apply_matrix(np.array([point]), m)[0], expected)


def test_cv2_matrix_agrees_with_pixel_convention():
    """A warp with cv2_matrix puts pixel (row 2, col 3) of the source where the matrix sends its centre."""
    import cv2

    src = np.zeros((20, 20), np.uint8)
    src[2, 3] = 255
    m = G.translation(5, 7) @ G.scaling(1.0, 1.0)
    out = cv2.warpAffine(src, G.cv2_matrix(m)[:2], (20, 20), flags=cv2.INTER_NEAREST)
    assert tuple(np.argwhere(out)[0]) == (9, 8)
    flipped = cv2.warpAffine(src, G.cv2_matrix(G.flip_lr(20))[:2], (20, 20), flags=cv2.INTER_NEAREST)
    assert tuple(np.argwhere(flipped)[0]) == (2, 16)  # x centre 3.5 -> 16.5


def test_random_affine_identity_when_ranges_are_zero():
    rng = np.random.default_rng(0)
    m = G.random_affine_matrix(
        rng, 200, 200, 100, 100, degrees=0, translate=0, scale=0, shear=0, perspective=0
    )
    np.testing.assert_allclose(m, G.translation(-50, -50))  # 2x canvas centre -> output centre


@pytest.mark.parametrize(
    "poly,rect,area",
    [
        ([(-5, -5), (5, -5), (5, 5), (-5, 5)], (0, 0, 10, 10), 25.0),
        ([(2, 2), (8, 2), (8, 8), (2, 8)], (0, 0, 10, 10), 36.0),
        ([(20, 20), (30, 20), (30, 30)], (0, 0, 10, 10), 0.0),
        ([(-10, 5), (20, 5), (5, 20)], (0, 0, 10, 10), 50.0),
        ([(0, 0), (10, 10), (0, 10)], (0, 0, 5, 20), 37.5),
    ],
)
def test_clip_polygon_rect_table(poly, rect, area):
    assert G.polygon_area(G.clip_polygon_rect(np.array(poly, float), *rect)) == pytest.approx(area, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    pts=st.lists(st.tuples(st.floats(-50, 150), st.floats(-50, 150)), min_size=3, max_size=12),
    w=st.floats(10, 100),
    h=st.floats(10, 100),
)
def test_clip_polygon_rect_matches_reference_loop(pts, w, h):
    poly = np.array(pts, float)
    fast = G.clip_polygon_rect(poly, 0, 0, w, h)
    slow = clip_polygon(poly, w, h)
    assert fast.shape == slow.shape
    np.testing.assert_allclose(fast, slow, atol=1e-9)
    if len(fast):
        assert (
            fast[:, 0].min() >= 0
            and fast[:, 0].max() <= w
            and fast[:, 1].min() >= 0
            and fast[:, 1].max() <= h
        )
