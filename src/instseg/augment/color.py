"""Photometric augmentations on ``H x W x 3 uint8 RGB`` images (lookup tables; geometry is untouched)."""

from __future__ import annotations

import numpy as np


def random_hsv(
    img: np.ndarray, rng: np.random.Generator, hgain: float, sgain: float, vgain: float
) -> np.ndarray:
    """Ultralytics' HSV jitter: hue, saturation and value multiplied by ``1 + U(-gain, gain)``."""
    import cv2

    if not (hgain or sgain or vgain):
        return img
    r = rng.uniform(-1, 1, 3) * (hgain, sgain, vgain) + 1
    x = np.arange(256, dtype=np.float32)
    lut_h = ((x * r[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * r[2], 0, 255).astype(np.uint8)
    table = np.stack([lut_h, lut_s, lut_v], 1).reshape(256, 1, 3)  # one 3-channel LUT: no split / merge
    return cv2.cvtColor(cv2.LUT(cv2.cvtColor(img, cv2.COLOR_RGB2HSV), table), cv2.COLOR_HSV2RGB)


def _lut(img: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    import cv2

    table = np.clip(np.arange(256, dtype=np.float32) * alpha + beta, 0, 255).astype(np.uint8)
    return cv2.LUT(img, table)


def random_brightness_contrast(
    img: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float
) -> np.ndarray:
    """``img * (1 + U(-contrast, contrast)) + 255 * U(-brightness, brightness)``, clipped to 0..255."""
    alpha = 1.0 + rng.uniform(-contrast, contrast)
    beta = 255.0 * rng.uniform(-brightness, brightness)
    return _lut(img, alpha, beta)


def photometric_distort(img: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """torchvision's ``RandomPhotometricDistort`` defaults: brightness [0.875, 1.125], contrast [0.5, 1.5],
    saturation [0.5, 1.5], hue [-0.05, 0.05] (each with probability ``p``, contrast before or after the
    colour steps at random), then a random channel permutation with probability ``p``."""
    import cv2

    if rng.random() < p:
        img = _lut(img, rng.uniform(0.875, 1.125), 0.0)
    contrast_first = rng.random() < 0.5
    c = rng.uniform(0.5, 1.5) if rng.random() < p else None

    def _contrast(im: np.ndarray) -> np.ndarray:
        mean = float(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).mean())
        return _lut(im, c, mean * (1 - c))

    if c is not None and contrast_first:
        img = _contrast(img)
    sat = rng.uniform(0.5, 1.5) if rng.random() < p else None
    hue = rng.uniform(-0.05, 0.05) if rng.random() < p else None
    if sat is not None or hue is not None:
        h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2HSV))
        x = np.arange(256, dtype=np.float32)
        if sat is not None:
            s = cv2.LUT(s, np.clip(x * sat, 0, 255).astype(np.uint8))
        if hue is not None:
            h = cv2.LUT(h, ((x + hue * 180) % 180).astype(np.uint8))
        img = cv2.cvtColor(cv2.merge((h, s, v)), cv2.COLOR_HSV2RGB)
    if c is not None and not contrast_first:
        img = _contrast(img)
    if rng.random() < p:
        img = np.ascontiguousarray(img[:, :, rng.permutation(3)])
    return img
