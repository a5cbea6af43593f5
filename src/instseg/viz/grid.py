"""Grids of augmented training samples (``instseg viz augment``): masks filled with alpha, boxes, names.

Images are ``H x W x 3 uint8 RGB``; boxes ``xyxy`` pixels of that image; masks ``[N, H/s, W/s]`` 0/1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from instseg.errors import DatasetError


def class_color(cls: int) -> tuple[int, int, int]:
    """A stable, well-spread RGB colour for class ``cls`` (golden-ratio hue steps)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((cls * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_instances(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray,
    names: list[str],
    alpha: float = 0.45,
) -> np.ndarray:
    """A copy of ``image`` with each instance's mask blended in its class colour, its box and its name."""
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    for box, cls, mask in zip(boxes, labels, masks):
        color = np.array(class_color(int(cls)), np.float32)
        m = np.asarray(mask, np.uint8)
        if m.shape != (h, w):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        sel = m.astype(bool)
        out[sel] = (out[sel].astype(np.float32) * (1 - alpha) + color * alpha).astype(np.uint8)
    for box, cls in zip(boxes, labels):
        color = class_color(int(cls))
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, 1)
        name = names[int(cls)] if 0 <= int(cls) < len(names) else str(int(cls))
        (tw, th), base = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), color, -1)
        cv2.putText(out, name, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def tile(images: list[np.ndarray], cols: int | None = None, gap: int = 4) -> np.ndarray:
    """Equal-size images in a grid (``cols`` default: the square root), separated by ``gap`` white pixels."""
    n = len(images)
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    h, w = images[0].shape[:2]
    grid = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = img
    return grid


def augment_grid(
    data: Path,
    out: Path,
    *,
    n: int = 16,
    split: str = "train",
    imgsz: int = 640,
    seed: int = 0,
    recipe: str = "ultralytics",
) -> Path:
    """Write a PNG grid of ``n`` augmented samples of ``split`` (the training pipeline, masks at stride 1)."""
    import cv2

    from instseg.config import AugmentConfig
    from instseg.data.checks import load_split
    from instseg.augment.dataset import InstanceSegDataset
    from instseg.data.yaml_config import load_data_yaml

    if n < 1:
        raise ValueError(f"--n {n}: draw at least one sample")
    spec = load_data_yaml(data)
    records, _ = load_split(spec, split)
    if not records:
        raise DatasetError(f"{data}: split {split!r} has no usable images; run `instseg doctor {data}`")
    ds = InstanceSegDataset(
        records, imgsz=imgsz, mask_stride=1, augment=AugmentConfig(recipe=recipe), train=True, seed=seed
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ds)) if n <= len(ds) else rng.integers(0, len(ds), n)
    panels = []
    for i in order[:n]:
        item = ds[int(i)]
        img = item["image"].permute(1, 2, 0).numpy()
        panels.append(
            draw_instances(
                img, item["boxes"].numpy(), item["labels"].numpy(), item["masks"].numpy(), spec.names
            )
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(tile(panels), cv2.COLOR_RGB2BGR)):
        raise OSError(f"{out}: could not write the image (use a .png or .jpg name in a writable folder)")
    return out
