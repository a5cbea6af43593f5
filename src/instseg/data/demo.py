"""A small synthetic YOLO-seg dataset for the demo and the tests, deterministic by seed.

Each image shows 2..6 semi-transparent shapes on a textured background: disks, rotated squares, triangles
and rings (a disk with a hole), of sizes from 4 % to 30 % of the image side, placed so that many overlap.
Because the shapes are semi-transparent, every instance stays fully visible and its label is its whole exact
polygon; masks of different instances overlap where the shapes do, as COCO allows.

Holes: a ring is written as **one polygon** whose outer and inner circles are joined by a zero-width bridge
(:func:`instseg.data.masks.join_polygons`); even-odd filling (pycocotools, OpenCV) gives back the hole, and
the file stays plain YOLO that Ultralytics reads too.

Layout written under ``root``::

    data.yaml                  names, train: images/train, val: images/val (no 'path': the YAML's folder)
    images/{train,val}/NNNN.jpg
    labels/{train,val}/NNNN.txt
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from instseg.data.types import Instance

DEMO_NAMES: list[str] = ["disk", "square", "triangle", "ring"]
_CIRCLE_VERTICES = 40


def _regular(center: np.ndarray, radius: float, n: int, angle: float) -> np.ndarray:
    """Vertices (x, y) of a regular n-gon, absolute pixels, counter-clockwise on screen."""
    t = angle + np.arange(n) * (2 * np.pi / n)
    return np.stack([center[0] + radius * np.cos(t), center[1] - radius * np.sin(t)], axis=1)


def shape_polygon(cls: int, center: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """The polygon (absolute pixels) of one demo shape of class ``cls`` (index into :data:`DEMO_NAMES`).

    ``radius`` is the circumradius in pixels; a ring's hole has half that radius and is bridged in.
    """
    from instseg.data.masks import join_polygons

    name = DEMO_NAMES[cls]
    if name == "disk":
        return _regular(center, radius, _CIRCLE_VERTICES, angle)
    if name == "square":
        return _regular(center, radius, 4, angle)
    if name == "triangle":
        return _regular(center, radius, 3, angle)
    outer = _regular(center, radius, _CIRCLE_VERTICES, angle)
    inner = _regular(center, radius * 0.5, _CIRCLE_VERTICES, angle)[::-1]
    return join_polygons([outer, inner])


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour gradient with mild noise, ``size x size x 3`` uint8 RGB."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    c0, cx, cy = rng.uniform(40, 200, 3), rng.uniform(-50, 50, 3), rng.uniform(-50, 50, 3)
    img = c0 + xx[..., None] * cx + yy[..., None] * cy + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _paint(img: np.ndarray, poly: np.ndarray, color: np.ndarray, alpha: float) -> None:
    """Blend ``color`` into ``img`` inside ``poly`` (even-odd filled, so bridged holes stay open)."""
    import cv2

    mask = np.zeros(img.shape[:2], np.uint8)
    # OpenCV samples pixel centres at integer coordinates; ours are at +0.5. 4 fractional bits.
    pts = np.round((poly - 0.5) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    sel = mask.astype(bool)
    img[sel] = (img[sel] * (1 - alpha) + color * alpha).astype(np.uint8)


def make_demo_image(rng: np.random.Generator, imgsz: int) -> tuple[np.ndarray, list[Instance]]:
    """One demo image (``imgsz x imgsz x 3`` uint8 RGB) and its instances (polygons in absolute pixels)."""
    img = _background(rng, imgsz)
    instances: list[Instance] = []
    centers: list[tuple[np.ndarray, float]] = []
    for _ in range(int(rng.integers(2, 7))):
        cls = int(rng.integers(0, len(DEMO_NAMES)))
        radius = float(imgsz * np.exp(rng.uniform(np.log(0.04), np.log(0.30))))
        radius = max(radius, 4.0)
        lo, hi = radius + 1, imgsz - radius - 1
        if centers and rng.random() < 0.6:  # next to a previous shape so they overlap
            c0, r0 = centers[int(rng.integers(0, len(centers)))]
            center = c0 + rng.uniform(-1, 1, 2) * (r0 + radius) * 0.6
        else:
            center = rng.uniform(lo, hi, 2)
        center = np.clip(center, lo, hi)
        poly = shape_polygon(cls, center, radius, float(rng.uniform(0, 2 * np.pi)))
        color = rng.uniform(0, 255, 3)
        _paint(img, poly, color, float(rng.uniform(0.55, 0.8)))
        bbox = np.concatenate([poly.min(0), poly.max(0)])
        instances.append(Instance(cls=cls, polygons=[poly], bbox=bbox))
        centers.append((center, radius))
    return img, instances


def make_demo_dataset(
    root: str | Path, n_train: int = 24, n_val: int = 8, imgsz: int = 256, seed: int = 0
) -> Path:
    """Write the demo dataset under ``root`` and return the path of its ``data.yaml``.

    The same ``(n_train, n_val, imgsz, seed)`` always gives the same pixels and labels.
    """
    import cv2
    import yaml

    from instseg.data.yolo import write_yolo_labels

    if n_train < 1 or n_val < 1 or imgsz < 32:
        raise ValueError(f"need n_train >= 1, n_val >= 1 and imgsz >= 32, got {n_train}, {n_val}, {imgsz}")
    root = Path(root)
    for split, count, offset in (("train", n_train, 0), ("val", n_val, 1_000_000)):
        img_dir, lab_dir = root / "images" / split, root / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lab_dir.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, offset + i])
            img, instances = make_demo_image(rng, imgsz)
            ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise OSError(f"{img_dir}: could not encode a demo image")
            buf.tofile(str(img_dir / f"{i:04d}.jpg"))
            write_yolo_labels(lab_dir / f"{i:04d}.txt", instances, imgsz, imgsz)
    data = {"train": "images/train", "val": "images/val", "nc": len(DEMO_NAMES), "names": list(DEMO_NAMES)}
    yaml_path = root / "data.yaml"
    yaml_path.write_text(
        "# instseg demo dataset (synthetic): make_demo_dataset("
        f"n_train={n_train}, n_val={n_val}, imgsz={imgsz}, seed={seed})\n"
        + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return yaml_path
