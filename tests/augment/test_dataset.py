"""InstanceSegDataset, ImageMeta's inverse mapping, collate, determinism across workers, the RAM cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instseg.augment import geometry as G
from instseg.augment.rasterize import rasterize_polygons
from instseg.augment.targets import mask_box
from instseg.config import AugmentConfig
from instseg.augment.dataset import ImageMeta, InstanceSegDataset, collate, worker_init_fn
from instseg.data.types import ImageRecord, Instance

TRIANGLE = np.array([[10.5, 12.25], [80.0, 20.0], [30.0, 66.0]])
RECT = np.array([[12.3, 9.6], [70.8, 9.6], [70.8, 51.2], [12.3, 51.2]])  # no sharp tips: boxes are exact


def _record(tmp_path: Path, w: int = 96, h: int = 72, polys=(RECT, TRIANGLE), seed: int = 0) -> ImageRecord:
    import cv2

    path = tmp_path / f"img{seed}_{w}x{h}.png"
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))
    insts = [Instance(cls=i, polygons=[np.asarray(p, float)]) for i, p in enumerate(polys)]
    return ImageRecord(path=path, width=w, height=h, instances=insts, image_id=seed + 7)


@pytest.mark.parametrize(
    "w,h,imgsz,stride", [(96, 72, 64, 1), (96, 72, 64, 4), (50, 90, 128, 1), (50, 90, 128, 4)]
)
def test_validation_letterbox_and_inverse_mapping(tmp_path, w, h, imgsz, stride):
    rec = _record(tmp_path, w, h)
    item = InstanceSegDataset([rec], imgsz=imgsz, mask_stride=stride, augment=None, train=False)[0]
    meta: ImageMeta = item["meta"]
    assert tuple(item["image"].shape) == (3, imgsz, imgsz) and meta.orig_size == (h, w)
    assert meta.image_id == 7 and meta.input_size == (imgsz, imgsz)
    new_w, new_h, left, top = G.letterbox_params(w, h, imgsz)
    assert meta.pad == (left, top) and meta.ratio == pytest.approx((new_w / w, new_h / h))
    polys0 = [G.clip_polygon_rect(p, 0, 0, w, h) for p in (RECT, TRIANGLE)]
    np.testing.assert_allclose(
        meta.boxes_to_original(item["boxes"].numpy()), [G.points_bbox([p]) for p in polys0], atol=1e-3
    )
    back = meta.masks_to_original(item["masks"]).numpy()
    assert back.shape == (2, h, w)
    tol = max(1.0, stride / min(meta.ratio))  # one mask cell, in original pixels
    np.testing.assert_allclose(mask_box(back[0]), G.points_bbox([polys0[0]]), atol=tol + 1e-6)
    for k, p in enumerate(polys0):
        ref = rasterize_polygons([p], h, w, 1) > 0
        assert (back[k] & ref).sum() / (back[k] | ref).sum() > (0.9 if stride == 1 else 0.75)


@pytest.mark.parametrize("degrees,fliplr", [(0.0, 1.0), (20.0, 0.0), (35.0, 1.0)])
def test_train_sample_maps_back_to_original(tmp_path, degrees, fliplr):
    rec = _record(tmp_path)
    cfg = AugmentConfig(mosaic=0.0, degrees=degrees, fliplr=fliplr, translate=0.05, scale=0.2)
    item = InstanceSegDataset([rec], imgsz=64, mask_stride=1, augment=cfg, train=True)[0]
    meta = item["meta"]
    assert item["labels"].tolist() == [0, 1]
    back = meta.masks_to_original(item["masks"].float()).numpy()[0]
    scale = np.sqrt(abs(np.linalg.det(meta.matrix[:2, :2])))
    np.testing.assert_allclose(mask_box(back), G.points_bbox([RECT]), atol=1.0 / scale + 1e-6)
    if degrees == 0:  # axis-aligned: the boxes map back exactly
        np.testing.assert_allclose(
            meta.boxes_to_original(item["boxes"]).numpy(),
            [G.points_bbox([RECT]), G.points_bbox([TRIANGLE])],
            atol=1e-3,
        )


def test_masks_to_original_empty():
    meta = ImageMeta(
        path=None, image_id=None, orig_size=(5, 7), input_size=(8, 8), ratio=(1.0, 1.0), pad=(0, 0)
    )
    import torch

    assert tuple(meta.masks_to_original(torch.zeros(0, 8, 8)).shape) == (0, 5, 7)


def test_determinism_epochs_and_workers(tmp_path):
    import torch

    recs = [_record(tmp_path, seed=i) for i in range(4)]
    ds = InstanceSegDataset(recs, imgsz=64, mask_stride=4, augment=AugmentConfig(), train=True, seed=3)
    a, b = ds[1], ds[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["image"], a["image"])
    loader0 = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=0, collate_fn=collate)
    loader2 = torch.utils.data.DataLoader(
        ds,
        batch_size=2,
        num_workers=2,
        collate_fn=collate,
        worker_init_fn=worker_init_fn,
        persistent_workers=True,
    )
    for _ in range(2):  # the second pass checks that set_epoch reaches persistent workers
        for (i0, t0, _), (i2, t2, _) in zip(loader0, loader2):
            assert torch.equal(i0, i2)
            assert all(torch.equal(x["masks"], y["masks"]) for x, y in zip(t0, t2))
        ds.set_epoch(2)


def test_collate_pads_and_keeps_targets(tmp_path):
    import torch

    ds = InstanceSegDataset([_record(tmp_path)], imgsz=64, mask_stride=4, augment=None, train=False)
    item = ds[0]
    small = dict(item, image=item["image"][:, :40, :48], masks=item["masks"][:, :10, :12])
    images, targets, metas = collate([item, small])
    assert tuple(images.shape) == (2, 3, 64, 64)
    assert (images[1, :, 40:, :] == 114).all() and torch.equal(
        images[1, :, :40, :48], item["image"][:, :40, :48]
    )
    assert tuple(targets[1]["masks"].shape) == (2, 16, 16) and set(targets[0]) == {
        "labels",
        "boxes",
        "masks",
        "has_mask",
    }
    assert metas[0] is item["meta"]


@pytest.mark.parametrize("cache,buffer,expected", [("ram", 0, 3), (None, 2, 2), (None, 0, 0)])
def test_image_cache(tmp_path, cache, buffer, expected):
    recs = [_record(tmp_path, seed=i) for i in range(3)]
    ds = InstanceSegDataset(
        recs, imgsz=64, mask_stride=4, augment=None, train=False, cache=cache, buffer=buffer
    )
    for i in range(3):
        assert max(ds.load_resized(i).shape[:2]) == 64
    assert len(ds._images) == expected
    assert ds.held_bytes() == sum(ds.load_resized(i).nbytes for i in list(ds._images))


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"imgsz": 30, "mask_stride": 4}, "multiple of mask_stride"),
        ({"imgsz": 64, "mask_stride": 4, "cache": "disk"}, "valid: 'ram'"),
    ],
)
def test_bad_arguments(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg):
        InstanceSegDataset([_record(tmp_path)], augment=None, train=False, **kw)


def test_demo_dataset_trains(demo_data):
    from instseg.data.checks import load_split

    recs, _ = load_split(demo_data, "train")
    ds = InstanceSegDataset(recs, imgsz=96, mask_stride=4, augment=AugmentConfig(), train=True)
    images, targets, _ = collate([ds[i] for i in range(4)])
    assert tuple(images.shape) == (4, 3, 96, 96) and images.dtype.is_floating_point is False
    assert sum(len(t["labels"]) for t in targets) > 0
    for t in targets:
        assert t["masks"].shape[1:] == (24, 24) and len(t["boxes"]) == len(t["labels"]) == len(t["masks"])


def test_rect_validation_batches(tmp_path):
    import torch

    from instseg.augment.letterbox import rect_batches

    recs = [
        _record(tmp_path, 96, 72, seed=0),
        _record(tmp_path, 96, 48, seed=1),
        _record(tmp_path, 40, 80, seed=2),
    ]
    batches, shapes = rect_batches(recs, 2, 64, stride=32)
    ds = InstanceSegDataset(recs, imgsz=64, mask_stride=4, augment=None, train=False, rect_shapes=shapes)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=batches, collate_fn=collate)
    got = [(tuple(images.shape), tuple(t[0]["masks"].shape[1:])) for images, t, _ in loader]
    assert got == [((2, 3, 64, 96), (16, 24)), ((1, 3, 96, 64), (24, 16))]
    item = ds[1]  # 96x48 in a 64x96 (h, w) box: scale 1, padded 8 rows above and below
    assert item["meta"].pad == (0.0, 8.0) and item["meta"].ratio == (1.0, 1.0)
    clipped = G.clip_polygon_rect(RECT, 0, 0, 96, 48)  # the label strays below the image: clipped at load
    np.testing.assert_allclose(
        item["meta"].boxes_to_original(item["boxes"]).numpy()[0], G.points_bbox([clipped]), atol=1e-4
    )


@pytest.mark.parametrize("stride", [1, 4])
def test_real_coco_json_dataset(car_damage_coco, stride):
    """COCO polygons (category ids not from 0) through the training pipeline and validation letterbox."""
    import json

    from instseg.data.coco import load_coco

    jsons = sorted((car_damage_coco / "val").glob("*.json"))
    if not jsons:
        pytest.skip(f"no COCO JSON in {car_damage_coco / 'val'}")
    coco = load_coco(jsons[0])
    assert coco.records, f"{jsons[0]} gave no records"
    n_ann = len(json.loads(jsons[0].read_text())["annotations"])
    assert sum(len(r.instances) for r in coco.records) <= n_ann
    for train in (True, False):
        ds = InstanceSegDataset(
            coco.records[:4], imgsz=128, mask_stride=stride, augment=AugmentConfig(), train=train
        )
        images, targets, metas = collate([ds[i] for i in range(len(ds))])
        assert tuple(images.shape[1:]) == (3, 128, 128)
        for t, meta in zip(targets, metas):
            assert t["masks"].shape[1:] == (128 // stride, 128 // stride)
            assert ((t["labels"] >= 0) & (t["labels"] < len(coco.names))).all()
            assert all(bool(m.any()) for m, h in zip(t["masks"], t["has_mask"]) if h)
            assert meta.orig_size[0] > 0
        if not train:  # validation keeps every instance (nothing is cropped by a letterbox)
            assert [len(t["labels"]) for t in targets] == [len(r.instances) for r in coco.records[:4]]


def test_masks_to_original_chunks_match(tmp_path):
    """More masks than one chunk: each comes back where a single-mask call puts it."""
    import torch

    meta = ImageMeta(
        path=None,
        image_id=None,
        orig_size=(30, 40),
        input_size=(32, 32),
        ratio=(0.8, 0.8),
        pad=(0.0, 4.0),
        matrix=G.translation(0, 4) @ G.scaling(0.8, 0.8),
    )
    masks = torch.rand(11, 8, 8)  # stride 4 probabilities
    together = meta.masks_to_original(masks)
    alone = torch.stack([meta.masks_to_original(masks[i : i + 1])[0] for i in range(11)])
    assert together.shape == (11, 30, 40) and torch.equal(together, alone)
