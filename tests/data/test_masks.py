"""Mask geometry: rasterization convention, RLE forms, and the single-ring polygons YOLO labels need."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from instseg.data.masks import (
    clip_polygon,
    instance_to_rle,
    join_polygons,
    mask_iou,
    mask_to_polygons,
    mask_to_rle,
    mask_to_single_polygon,
    normalize_rle,
    polygon_area,
    polygons_to_rle,
    polygons_to_single_polygon,
    rle_area,
    rle_to_bbox,
    rle_to_mask,
    rle_to_single_polygon,
)
from instseg.data.types import Instance
from instseg.errors import DatasetError


def _square(x1, y1, x2, y2):
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)


@pytest.mark.parametrize(
    "poly, area, box",
    [
        (_square(0, 0, 10, 10), 100, [0, 0, 10, 10]),  # pixel edges: rows/cols 0..9
        (_square(2, 3, 5, 7), 12, [2, 3, 5, 7]),
        (_square(-5, -5, 4, 4), 16, [0, 0, 4, 4]),  # clipped to the image
        (np.array([[0, 0], [20, 0], [0, 20]], np.float64), 190, [0, 0, 19, 19]),  # centres strictly inside
    ],
)
def test_polygon_rasterization_follows_pixel_edges(poly, area, box):
    rle = polygons_to_rle([poly], 30, 40)
    assert rle["size"] == [30, 40] and isinstance(rle["counts"], str)
    assert rle_area(rle) == area
    np.testing.assert_array_equal(rle_to_bbox(rle), box)
    assert rle_to_mask(rle).sum() == area


@pytest.mark.parametrize(
    "polys, area",
    [
        ([], 0),
        ([np.zeros((2, 2))], 0),  # fewer than 3 points encloses nothing
        ([_square(0, 0, 4, 4), _square(10, 10, 12, 12)], 20),  # union of parts
        ([_square(0, 0, 4, 4), _square(2, 2, 6, 6)], 28),  # overlap counted once
    ],
)
def test_polygons_union(polys, area):
    assert rle_area(polygons_to_rle(polys, 20, 20)) == area


def test_uncompressed_and_bytes_rle_normalize_to_the_same_mask():
    mask = np.zeros((6, 5), np.uint8)
    mask[1:4, 2:4] = 1
    compressed = mask_to_rle(mask)
    # Uncompressed COCO RLE: column-major run lengths starting with zeros.
    flat = mask.ravel(order="F")
    runs, value, count = [], 0, 0
    for v in flat:
        if v == value:
            count += 1
        else:
            runs.append(count)
            value, count = v, 1
    runs.append(count)
    uncompressed = {"size": [6, 5], "counts": runs}
    as_bytes = {"size": [6, 5], "counts": compressed["counts"].encode()}
    for rle in (uncompressed, as_bytes, compressed):
        assert normalize_rle(rle) == compressed
        np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert rle_area(uncompressed) == 6


@pytest.mark.parametrize(
    "bad", [{"size": [2, 2], "counts": [1, 2]}, {"counts": "x"}, {"size": [1, 1], "counts": 3}]
)
def test_bad_rle_is_rejected(bad):
    with pytest.raises(ValueError):
        normalize_rle(bad)


def _blobs(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        centre = tuple(int(v) for v in rng.integers(4, min(h, w) - 4, 2))
        cv2.circle(mask, centre, int(rng.integers(2, 12)), 1, -1)
    if seed % 2:
        cv2.circle(mask, (w // 2, h // 2), 3, 0, -1)  # a hole (or a bite)
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_mask_to_polygons_round_trips_exactly(seed):
    mask = _blobs(seed)
    polys = mask_to_polygons(mask)
    assert polys and all(p.shape[1] == 2 for p in polys)
    back = rle_to_mask(polygons_to_rle(polys, *mask.shape))
    np.testing.assert_array_equal(back, mask)


@pytest.mark.parametrize(
    "name, mask",
    [
        (
            "ring with hole",
            cv2.circle(cv2.circle(np.zeros((40, 40), np.uint8), (20, 20), 15, 1, -1), (20, 20), 6, 0, -1),
        ),
        (
            "two parts + hole",
            np.pad(
                np.kron(np.array([[1, 0, 1], [1, 1, 1], [0, 0, 1]], np.uint8), np.ones((6, 6), np.uint8)), 3
            ),
        ),
        ("checkerboard", (np.indices((12, 12)).sum(0) % 2).astype(np.uint8)),
        ("noise", (np.random.default_rng(3).random((30, 30)) < 0.4).astype(np.uint8)),
    ],
)
def test_single_ring_keeps_holes_and_parts(name, mask):
    ring, iou = rle_to_single_polygon(mask_to_rle(mask))
    assert iou == 1.0, name
    np.testing.assert_array_equal(rle_to_mask(polygons_to_rle([ring], *mask.shape)), mask)
    np.testing.assert_array_equal(mask_to_single_polygon(mask), ring)


def test_join_polygons_bridges_a_hole():
    outer, hole = _square(0, 0, 20, 20), _square(5, 5, 10, 10)
    ring = join_polygons([outer, hole])
    assert len(ring) == len(outer) + len(hole) + 2  # the bridge: there and back
    assert rle_area(polygons_to_rle([ring], 30, 30)) == 400 - 25


@pytest.mark.parametrize(
    "polys, expected_iou",
    [
        ([_square(0, 0, 4, 4)], 1.0),
        ([_square(0, 0, 4, 4), _square(8, 8, 12, 14)], 1.0),  # disjoint parts: bridged exactly
        ([_square(0, 0, 6, 6), _square(3, 3, 9, 9)], 1.0),  # overlapping parts: traced from the union
    ],
)
def test_polygons_to_single_polygon(polys, expected_iou):
    ring, iou = polygons_to_single_polygon(polys, 16, 16)
    assert iou == pytest.approx(expected_iou)
    assert mask_iou(polygons_to_rle(polys, 16, 16), polygons_to_rle([ring], 16, 16)) == pytest.approx(iou)


@pytest.mark.parametrize(
    "a, b, iou",
    [
        (_square(0, 0, 4, 4), _square(0, 0, 4, 4), 1.0),
        (_square(0, 0, 4, 4), _square(2, 0, 6, 4), 8 / 24),
        (_square(0, 0, 4, 4), _square(10, 10, 12, 12), 0.0),
    ],
)
def test_mask_iou_arrays_and_rles(a, b, iou):
    ra, rb = polygons_to_rle([a], 16, 16), polygons_to_rle([b], 16, 16)
    assert mask_iou(ra, rb) == pytest.approx(iou)
    assert mask_iou(rle_to_mask(ra), rb) == pytest.approx(iou)
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


@pytest.mark.parametrize(
    "inst, area",
    [
        (Instance(cls=0, polygons=[_square(1, 1, 5, 5)]), 16),
        (Instance(cls=0, rle=mask_to_rle(np.ones((10, 12), np.uint8))), 120),
        (Instance(cls=0, bbox=np.array([2.0, 2.0, 6.0, 4.0])), 8),  # box-only: the filled box
    ],
)
def test_instance_to_rle(inst, area):
    assert rle_area(instance_to_rle(inst, 10, 12)) == area


def test_instance_rle_of_wrong_size_names_the_problem():
    inst = Instance(cls=0, rle=mask_to_rle(np.ones((4, 4), np.uint8)), source_line=7)
    with pytest.raises(DatasetError, match=r"does not match the image size.*line 7"):
        instance_to_rle(inst, 10, 12)


@pytest.mark.parametrize("poly, area", [(_square(0, 0, 3, 2), 6.0), (np.zeros((2, 2)), 0.0)])
def test_polygon_area(poly, area):
    assert polygon_area(poly) == area


@pytest.mark.parametrize(
    "poly, expected_area",
    [
        (_square(2, 2, 8, 8), 36.0),  # inside: unchanged
        (_square(-4, -4, 4, 4), 16.0),  # one corner
        (_square(-5, 3, 25, 5), 40.0),  # through both sides
        (np.array([[5, 5], [100, 8], [5, 9]], float), None),  # a spike far out
        (_square(30, 30, 40, 40), 0.0),  # all outside
    ],
)
def test_clip_polygon_keeps_exactly_the_inside(poly, expected_area):
    clipped = clip_polygon(poly, 20, 10)
    if len(clipped):
        assert clipped[:, 0].min() >= 0 and clipped[:, 0].max() <= 20
        assert clipped[:, 1].min() >= 0 and clipped[:, 1].max() <= 10
    if expected_area is not None:
        assert polygon_area(clipped) == pytest.approx(expected_area)
    else:  # x runs 5..20 inside; the spike's width shrinks linearly from 4 at x=5 to 4*80/95 at x=20
        assert polygon_area(clipped) == pytest.approx((4 + 4 * 80 / 95) / 2 * 15)
    assert mask_iou(polygons_to_rle([poly], 10, 20), polygons_to_rle([clipped], 10, 20)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "polys, box",
    [
        ([_square(2, 3, 8, 9)], [2, 3, 8, 9]),
        ([_square(-4, -4, 4, 4), _square(10, 1, 12, 2)], [0, 0, 12, 4]),
        # the far vertex (100, 100) would stretch the box to x=20; the visible part ends at x = 4 + 9.6
        ([np.array([[0, 0], [4, 0], [100, 100]], float)], [0, 0, 13.6, 10]),
        ([_square(30, 30, 40, 40)], [0, 0, 0, 0]),
    ],
)
def test_polygons_bbox_is_the_visible_extent(polys, box):
    from instseg.data.masks import polygons_bbox

    np.testing.assert_allclose(polygons_bbox(polys, 10, 20), box, atol=1e-9)
