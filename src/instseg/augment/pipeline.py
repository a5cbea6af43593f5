"""The recipes: which steps run, in which order, with which parameters (all from :class:`AugmentConfig`).

``ultralytics``: [mosaic of 4 (p=mosaic) | letterbox] -> random affine -> [mixup with a second such sample
(p=mixup)] -> flips -> copy-paste (``copy_paste``: the fraction of instances pasted, as Ultralytics' flip
mode; applied after the warp, on the output canvas) -> HSV -> brightness/contrast (p=brightness_contrast_p). Every geometric step of one
branch (letterbox or mosaic canvas, affine, flips) is composed into one matrix and warped once.
``torchvision``: letterbox to imgsz, horizontal flip (p=fliplr), RandomPhotometricDistort.
``none``: letterbox only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from instseg.augment import geometry as G
from instseg.augment.color import photometric_distort, random_brightness_contrast, random_hsv
from instseg.augment.copy_paste import copy_paste
from instseg.augment.mosaic import mixup, mosaic4, mosaic_center, window_for
from instseg.augment.sample import Sample, letterbox, warp
from instseg.config import AugmentConfig

Loader = Callable[[int], Sample]  # index -> the image resized to imgsz on its long side, with its instances


def _branch(
    load: Loader,
    n: int,
    index: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    imgsz: int,
    mosaic_on: bool,
) -> tuple[Sample, np.ndarray]:
    """A sample's source canvas and the matrix (letterbox or none, then random affine) to the output."""

    def affine(canvas: int) -> np.ndarray:
        return G.random_affine_matrix(
            rng,
            canvas,
            canvas,
            imgsz,
            imgsz,
            degrees=cfg.degrees,
            translate=cfg.translate,
            scale=cfg.scale,
            shear=cfg.shear,
            perspective=cfg.perspective,
        )

    if mosaic_on and cfg.mosaic > 0 and rng.random() < cfg.mosaic:
        others = rng.integers(0, n, 3)
        center = mosaic_center(rng, imgsz)
        aff = affine(2 * imgsz)
        # only the window of the 2*imgsz canvas that the affine brings into view is built
        x0, y0, x1, y1 = window_for(aff, imgsz, imgsz, 2 * imgsz)
        src = mosaic4([load(index)] + [load(int(j)) for j in others], imgsz, center, (x0, y0, x1, y1))
        return src, aff @ G.translation(x0, y0)
    src = load(index)
    return src, affine(imgsz) @ G.letterbox_matrix(*src.size, imgsz)


def _flips(rng: np.random.Generator, cfg: AugmentConfig, imgsz: int) -> np.ndarray:
    m = np.eye(3)
    if cfg.flipud and rng.random() < cfg.flipud:
        m = G.flip_ud(imgsz) @ m
    if cfg.fliplr and rng.random() < cfg.fliplr:
        m = G.flip_lr(imgsz) @ m
    return m


def ultralytics_recipe(
    load: Loader,
    n: int,
    index: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    imgsz: int,
    mosaic_on: bool,
) -> Sample:
    """One training sample of the Ultralytics recipe (``imgsz x imgsz``)."""
    src, m = _branch(load, n, index, rng, cfg, imgsz, mosaic_on)
    second = None
    if mosaic_on and cfg.mixup > 0 and rng.random() < cfg.mixup:
        second = _branch(load, n, int(rng.integers(0, n)), rng, cfg, imgsz, mosaic_on)
    flip = _flips(rng, cfg, imgsz)
    out = warp(src, flip @ m, imgsz, imgsz)
    if second is not None:
        out = mixup(out, warp(second[0], flip @ second[1], imgsz, imgsz), rng)
    if cfg.copy_paste > 0:
        out = copy_paste(out, rng, cfg.copy_paste)
    image = random_hsv(out.image, rng, cfg.hsv_h, cfg.hsv_s, cfg.hsv_v)
    if cfg.brightness_contrast_p and rng.random() < cfg.brightness_contrast_p:
        image = random_brightness_contrast(image, rng, cfg.brightness, cfg.contrast)
    out.image = image
    return out


def torchvision_recipe(
    load: Loader, index: int, rng: np.random.Generator, cfg: AugmentConfig, imgsz: int
) -> Sample:
    """torchvision's detection recipe: resize (letterbox) to ``imgsz``, horizontal flip, photometric distort."""
    out = letterbox(load(index), imgsz)
    if cfg.fliplr and rng.random() < cfg.fliplr:
        out = warp(out, G.flip_lr(imgsz), imgsz, imgsz)
    out.image = photometric_distort(out.image, rng)
    return out


def train_sample(
    load: Loader,
    n: int,
    index: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    imgsz: int,
    mosaic_on: bool,
) -> Sample:
    """One augmented training sample with the recipe ``cfg.recipe``."""
    if cfg.recipe == "ultralytics":
        return ultralytics_recipe(load, n, index, rng, cfg, imgsz, mosaic_on)
    if cfg.recipe == "torchvision":
        return torchvision_recipe(load, index, rng, cfg, imgsz)
    return letterbox(load(index), imgsz)
