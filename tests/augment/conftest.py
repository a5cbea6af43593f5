"""Tiny synthetic records for the augmentation and Dataset tests (images written to tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instseg.data.types import ImageRecord, Instance


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    return path


def polygon_record(
    tmp: Path, name: str, width: int, height: int, polys: list[np.ndarray], seed: int = 0
) -> ImageRecord:
    """One PNG of ``width x height`` with one instance per polygon, class id = instance index."""
    path = write_image(tmp / f"{name}.png", width, height, seed)
    insts = [Instance(cls=i, polygons=[np.asarray(p, np.float64)]) for i, p in enumerate(polys)]
    return ImageRecord(path=path, width=width, height=height, instances=insts, image_id=seed + 1)


def random_polygon(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A fat star-shaped polygon (5 to 9 vertices, radii within a factor 1.6, may be concave) in the image;
    fat, so that no sliver thinner than a pixel sticks out (a sliver no rasterization can show)."""
    n = int(rng.integers(5, 10))
    cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
    r = rng.uniform(4, 0.4 * min(width, height)) * rng.uniform(0.6, 1.0, n)
    a = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
    pts = np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)
    return np.clip(pts, 0, [width, height])


class Synth:
    """The helpers above, as a fixture (test folders are not packages, so they cannot be imported)."""

    write_image = staticmethod(write_image)
    polygon_record = staticmethod(polygon_record)
    random_polygon = staticmethod(random_polygon)


@pytest.fixture(scope="session")
def synth() -> Synth:
    return Synth()


@pytest.fixture()
def make_record(tmp_path):
    def make(name: str, width: int, height: int, polys: list[np.ndarray], seed: int = 0) -> ImageRecord:
        return polygon_record(tmp_path, name, width, height, polys, seed)

    return make
