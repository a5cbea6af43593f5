"""The training/validation torch Dataset over ImageRecords, its per-image metadata, and the collate.

``ds[i]`` -> ``{"image": uint8 [3, H, W] RGB, "labels": int64 [N], "boxes": float32 [N, 4] xyxy output pixels,
"masks": uint8 [N, H/s, W/s], "has_mask": bool [N], "polygons": list (per instance, its float64 (K, 2)
parts in output pixels), "meta": ImageMeta}``. Training samples are
``imgsz x imgsz``; validation samples are letterboxed (resize keeping the ratio, grey padding, centred) to
``imgsz x imgsz``, or to their batch's rectangle with ``rect_shapes``. Box-only instances keep their box with an all-zero mask and ``has_mask=False``.

Determinism: sample ``i`` of epoch ``e`` draws from ``numpy.random.default_rng([seed, e, i])``, so any number
of DataLoader workers gives the same samples as one process. The epoch and the mosaic switch live in a
shared-memory tensor, so ``set_epoch``/``close_mosaic`` reach persistent workers too.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instseg.config import AugmentConfig, ConfigError
from instseg.data.types import ImageRecord


@dataclass
class ImageMeta:
    """Where a sample came from and how to map predictions on it back to the original image.

    ``matrix`` maps continuous original pixels to input pixels (3x3); for letterboxed samples it is
    ``x_in = x0 * ratio + pad``. Sizes are ``(h, w)``; ``ratio`` is ``(rw, rh)``; ``pad`` is ``(left, top)``.
    For mosaic/mixup training samples the mapping is that of the sample's own (first) image.
    """

    path: Path | None
    image_id: int | None
    orig_size: tuple[int, int]
    input_size: tuple[int, int]
    ratio: tuple[float, float]
    pad: tuple[float, float]
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))

    def boxes_to_original(self, boxes: Any):
        """xyxy boxes in input pixels -> original pixels (the extent of the mapped corners); same type."""
        import torch

        from instseg.augment.geometry import apply_matrix

        is_t = isinstance(boxes, torch.Tensor)
        b = (boxes.detach().cpu().double().numpy() if is_t else np.asarray(boxes, np.float64)).reshape(-1, 4)
        inv = np.linalg.inv(self.matrix)
        x1, y1, x2, y2 = b.T
        pts = apply_matrix(np.stack([x1, y1, x2, y1, x2, y2, x1, y2], 1).reshape(-1, 2), inv).reshape(
            -1, 4, 2
        )
        out = np.concatenate([pts.min(1), pts.max(1)], 1)
        return torch.as_tensor(out, dtype=boxes.dtype if is_t else torch.float32) if is_t else out

    def masks_to_original(self, masks, threshold: float = 0.5):
        """Masks ``[K, h, w]`` (bool or probabilities) at input resolution or any stride of it -> bool
        ``[K, H0, W0]`` on the original image: each original pixel centre is mapped into the mask and read
        bilinearly (``grid_sample``'s rule), then thresholded; only the pixels next to a mask's support are
        computed (:mod:`instseg.augment.unmap`)."""
        import torch

        from instseg.augment.unmap import mask_crops

        h0, w0 = self.orig_size
        k = int(masks.shape[0]) if getattr(masks, "ndim", 0) == 3 else 0
        out = np.zeros((k, h0, w0), dtype=bool)
        for i, y0, y1, x0, x1, crop in mask_crops(masks, self.matrix, self.input_size, self.orig_size,
                                                  threshold):
            out[i, y0:y1, x0:x1] = crop
        return torch.from_numpy(out)

    def masks_to_rles(self, masks, threshold: float = 0.5) -> list[dict]:
        """:meth:`masks_to_original` as compressed COCO RLEs (``str`` counts), built from each mask's crop
        without a full-size array."""
        from instseg.augment.unmap import masks_to_rles

        return masks_to_rles(masks, self.matrix, self.input_size, self.orig_size, threshold)


def worker_init_fn(worker_id: int) -> None:
    """Seed Python's and NumPy's global generators per worker (the Dataset itself does not use them)."""
    import random

    import torch

    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class InstanceSegDataset:
    """``torch.utils.data.Dataset`` over ``records`` (see module docstring).

    ``cache="ram"`` keeps every decoded image (resized to ``imgsz`` on its long side) in memory; without it
    a bounded buffer of the ``buffer`` most recent images serves mosaic's repeated reads. ``rect_shapes``
    (validation): per index the ``(h, w)`` to letterbox to, from :func:`instseg.augment.letterbox.rect_batches`.
    """

    def __init__(
        self,
        records: list[ImageRecord],
        *,
        imgsz: int,
        mask_stride: int,
        augment: AugmentConfig | None,
        train: bool,
        cache: str | None = None,
        seed: int = 0,
        buffer: int = 128,
        rect_shapes: dict[int, tuple[int, int]] | None = None,
    ):
        import torch

        if imgsz <= 0 or imgsz % max(1, mask_stride):
            raise ConfigError(
                f"imgsz={imgsz} must be a positive multiple of mask_stride={mask_stride}; pick e.g. "
                f"{max(mask_stride, 32) * max(1, round(imgsz / max(mask_stride, 32)))}"
            )
        if cache not in (None, "ram"):
            raise ConfigError(f"cache={cache!r}; valid: 'ram' or None (no cache)")
        self.records = list(records)
        self.imgsz, self.mask_stride, self.train, self.seed = (
            int(imgsz),
            int(mask_stride),
            bool(train),
            int(seed),
        )
        self.augment = augment if augment is not None else AugmentConfig(recipe="none")
        self.cache = cache
        self.buffer = int(buffer)
        self.rect_shapes = dict(rect_shapes or {})  # validation: index -> (h, w), see augment.letterbox
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._state = torch.zeros(2, dtype=torch.int64).share_memory_()  # [epoch, mosaic closed]

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """The epoch enters every sample's seed (call before each epoch's iteration starts)."""
        self._state[0] = int(epoch)

    def close_mosaic(self) -> None:
        """Turn mosaic and mixup off for the rest of training (the last ``close_mosaic`` epochs)."""
        self._state[1] = 1

    @property
    def mosaic_on(self) -> bool:
        return not bool(self._state[1])

    def load_resized(self, index: int) -> np.ndarray:
        """The image ``index`` resized so its long side is ``imgsz`` (INTER_LINEAR when training, as
        Ultralytics; INTER_AREA for validation), from the cache when present."""
        import cv2

        from instseg.data.images import load_image

        img = self._images.get(index)
        if img is not None:
            self._images.move_to_end(index)
            return img
        img = load_image(self.records[index].path)
        h, w = img.shape[:2]
        r = self.imgsz / max(h, w)
        if r != 1:
            interp = cv2.INTER_LINEAR if (self.train or r > 1) else cv2.INTER_AREA
            img = cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))), interpolation=interp)
        if self.cache == "ram" or self.buffer > 0:
            self._images[index] = img
            if self.cache != "ram" and len(self._images) > self.buffer:
                self._images.popitem(last=False)
        return img

    def held_bytes(self) -> int:
        """Bytes of decoded images held (the RAM cache or the mosaic buffer)."""
        return sum(v.nbytes for v in self._images.values())

    def _load_sample(self, index: int):
        from instseg.augment.sample import from_record

        rec = self.records[index]
        return from_record(rec, self.load_resized(index))

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(self._state[0]), int(index)])

    def sample(self, index: int):
        """The augmented (or letterboxed) :class:`~instseg.augment.sample.Sample` of ``index``."""
        from instseg.augment.pipeline import train_sample
        from instseg.augment.sample import letterbox

        if self.train:
            return train_sample(
                self._load_sample, len(self), index, self.rng(index), self.augment, self.imgsz, self.mosaic_on
            )
        return letterbox(self._load_sample(index), self.rect_shapes.get(index, self.imgsz))

    def __getitem__(self, index: int) -> dict:
        import torch

        from instseg.augment.targets import to_targets

        s = self.sample(index)
        t = to_targets(s, self.mask_stride, self.augment.min_area)
        rec = self.records[index]
        m = s.matrix
        meta = ImageMeta(
            path=rec.path,
            image_id=rec.image_id,
            orig_size=(rec.height, rec.width),
            input_size=(s.image.shape[0], s.image.shape[1]),
            ratio=(float(m[0, 0]), float(m[1, 1])),
            pad=(float(m[0, 2]), float(m[1, 2])),
            matrix=m,
        )
        return {
            "image": torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1))),
            "labels": torch.from_numpy(t["labels"]),
            "boxes": torch.from_numpy(t["boxes"]),
            "masks": torch.from_numpy(t["masks"]),
            "has_mask": torch.from_numpy(t["has_mask"]),
            "polygons": t["polygons"],
            "meta": meta,
        }


def collate(batch: list[dict]):
    """``(images uint8 [B, 3, H, W], targets: list[dict(labels, boxes, masks, has_mask)], metas)``.

    Images of different sizes are padded at the right/bottom with grey 114 to the largest in the batch (the
    metas stay valid: padding is outside the image); masks are padded with zeros to match.
    """
    import torch
    import torch.nn.functional as F

    hmax = max(int(b["image"].shape[1]) for b in batch)
    wmax = max(int(b["image"].shape[2]) for b in batch)
    images, targets = [], []
    for b in batch:
        img, masks = b["image"], b["masks"]
        _, h, w = img.shape
        if (h, w) != (hmax, wmax):
            img = F.pad(img, (0, wmax - w, 0, hmax - h), value=114)
            s = max(1, round(h / max(1, masks.shape[1]))) if masks.ndim == 3 and masks.shape[1] else 1
            hs, ws = -(-hmax // s), -(-wmax // s)
            masks = F.pad(masks, (0, ws - masks.shape[2], 0, hs - masks.shape[1]), value=0)
        images.append(img)
        targets.append(
            {"labels": b["labels"], "boxes": b["boxes"], "masks": masks, "has_mask": b["has_mask"]}
        )
    return torch.stack(images), targets, [b["meta"] for b in batch]
