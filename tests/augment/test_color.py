"""Photometric steps: identities at zero strength, exact lookup-table values, shapes kept."""

from __future__ import annotations

import numpy as np
import pytest

from instseg.augment.color import photometric_distort, random_brightness_contrast, random_hsv

IMG = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)


def test_hsv_zero_gains_is_identity():
    assert random_hsv(IMG, np.random.default_rng(0), 0.0, 0.0, 0.0) is IMG


@pytest.mark.parametrize("gains", [(0.015, 0.7, 0.4), (0.5, 0.0, 0.0), (0.0, 0.0, 0.9)])
def test_hsv_changes_image_keeps_shape(gains):
    out = random_hsv(IMG, np.random.default_rng(1), *gains)
    assert out.shape == IMG.shape and out.dtype == np.uint8 and not np.array_equal(out, IMG)


def test_hsv_value_only_keeps_gray_gray():
    gray = np.full((4, 4, 3), 100, np.uint8)
    out = random_hsv(gray, np.random.default_rng(2), 0.0, 0.0, 0.4)
    assert (out == out[0, 0, 0]).all()  # a grey image stays grey: only V moved


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brightness_contrast_is_the_affine_lut(seed):
    rng = np.random.default_rng(seed)
    out = random_brightness_contrast(IMG, np.random.default_rng(seed), 0.2, 0.2)
    alpha, beta = 1 + rng.uniform(-0.2, 0.2), 255 * rng.uniform(-0.2, 0.2)
    expected = np.clip(IMG.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("p,changed", [(0.0, False), (1.0, True)])
def test_photometric_distort(p, changed):
    out = photometric_distort(IMG, np.random.default_rng(3), p=p)
    assert out.shape == IMG.shape and out.dtype == np.uint8
    assert (not np.array_equal(out, IMG)) == changed
