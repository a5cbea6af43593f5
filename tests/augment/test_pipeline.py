"""The augmentation recipes end to end: boxes tight on masks, nothing visible lost, empty targets valid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instseg.augment import geometry as G
from instseg.augment.sample import Sample, from_record, warp
from instseg.augment.targets import mask_box, to_targets
from instseg.config import AugmentConfig
from instseg.augment.dataset import InstanceSegDataset
from instseg.data.masks import clip_polygon, mask_to_rle, polygon_area
from instseg.data.types import ImageRecord, Instance


def _check_boxes_tight(t: dict, stride: int) -> None:
    """Each box (from the polygon geometry) is the tight box of its mask within two mask cells. A cell is in
    the mask when the polygon covers its centre, so a corner sharper than a right angle sticks out past the
    last centre it covers: the fat stars of ``random_polygon``, sheared and rotated, reach 1.38 cells (60,000
    random polygons at strides 1 and 4), never two. Where the canvas border cut an instance, the cut may leave
    a sliver along the border that no rasterization shows: there the mask's box must only lie inside the box
    (grown by one cell). Boxes a cell scale or a clip away from their masks are off by far more."""
    for box, mask, has in zip(t["boxes"], t["masks"], t["has_mask"]):
        if not has:
            continue
        mask = np.asarray(mask)
        assert mask.any(), "a kept instance has an empty mask"
        mb = mask_box(mask) * stride
        h, w = mask.shape[0] * stride, mask.shape[1] * stride
        cut = box[0] <= 0 or box[1] <= 0 or box[2] >= w or box[3] >= h
        if cut:
            assert (mb[:2] >= box[:2] - stride * 1.001).all() and (mb[2:] <= box[2:] + stride * 1.001).all()
        else:
            np.testing.assert_allclose(mb, box, atol=stride * 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    degrees=st.floats(0, 45),
    translate=st.floats(0, 0.4),
    scale=st.floats(0, 0.9),
    shear=st.floats(0, 20),
    fliplr=st.sampled_from([0.0, 1.0]),
    flipud=st.sampled_from([0.0, 1.0]),
    stride=st.sampled_from([1, 4]),
    min_area=st.sampled_from([1.0, 4.0, 30.0]),
)
def test_single_image_affine_properties(
    tmp_path_factory, synth, seed, degrees, translate, scale, shear, fliplr, flipud, stride, min_area
):
    """Mosaic off: the sample's matrix maps the original image to the output, so an independent reference
    (B's loop clipping of each original polygon) says which instances are still visible and how much."""
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(40, 100)), int(rng.integers(40, 100))
    polys = [synth.random_polygon(rng, w, h) for _ in range(int(rng.integers(0, 5)))]
    rec = synth.polygon_record(tmp_path_factory.mktemp("p"), "img", w, h, polys, seed)
    cfg = AugmentConfig(
        degrees=degrees,
        translate=translate,
        scale=scale,
        shear=shear,
        fliplr=fliplr,
        flipud=flipud,
        mosaic=0.0,
        min_area=min_area,
    )
    ds = InstanceSegDataset([rec], imgsz=64, mask_stride=stride, augment=cfg, train=True, seed=seed)
    s = ds.sample(0)
    t = to_targets(s, stride, min_area)
    assert s.image.shape == (64, 64, 3) and t["masks"].shape[1:] == (64 // stride, 64 // stride)
    _check_boxes_tight(t, stride)
    ref_area = np.array([polygon_area(clip_polygon(G.apply_matrix(p, s.matrix), 64, 64)) for p in polys])
    visible = set(np.flatnonzero(ref_area >= min_area * 1.001).tolist())
    borderline = set(np.flatnonzero(np.abs(ref_area - min_area) <= min_area * 0.001).tolist())
    kept = set(t["labels"].tolist())
    assert visible - kept == set(), f"visible instances lost: {sorted(visible - kept)} areas {ref_area}"
    assert kept - visible - borderline == set(), "an instance below min_area was kept"
    np.testing.assert_allclose(t["areas"], ref_area[t["labels"]], rtol=1e-6, atol=1e-6)
    for label, box in zip(t["labels"], t["boxes"]):  # the box is exactly the clipped geometry's extent
        ref = clip_polygon(G.apply_matrix(polys[label], s.matrix), 64, 64)
        np.testing.assert_allclose(box, np.r_[ref.min(0), ref.max(0)], atol=1e-3)


@pytest.mark.parametrize("mixup,copy_paste", [(0.0, 0.0), (1.0, 0.0), (0.0, 0.5)])
@pytest.mark.parametrize("stride", [1, 4])
def test_mosaic_and_mixup_boxes_tight(make_record, synth, mixup, copy_paste, stride):
    rng = np.random.default_rng(3)
    recs = [
        make_record(f"m{i}", 80, 60, [synth.random_polygon(rng, 80, 60) for _ in range(3)], seed=i)
        for i in range(4)
    ]
    cfg = AugmentConfig(mosaic=1.0, mixup=mixup, copy_paste=copy_paste, degrees=10, shear=5)
    ds = InstanceSegDataset(recs, imgsz=64, mask_stride=stride, augment=cfg, train=True)
    counts = []
    for i in range(4):
        t = to_targets(ds.sample(i), stride, cfg.min_area)
        _check_boxes_tight(t, stride)
        assert (t["boxes"][:, 2:] <= 64).all() and (t["boxes"] >= 0).all()
        counts.append(len(t["labels"]))
    assert max(counts) > 3  # instances of several source images appear together


def test_mosaic_tiles_cover_canvas_without_overlap(make_record):
    from instseg.augment.mosaic import mosaic4

    rec = make_record("t", 50, 40, [np.array([[0, 0], [50, 0], [50, 40], [0, 40]], float)])
    tiles = [from_record(rec, np.full((40, 50, 3), 10 * (k + 1), np.uint8)) for k in range(4)]
    s = mosaic4(tiles, 64, (40, 70))
    areas = [polygon_area(p[0]) for p in s.polys]
    painted = [(s.image[..., 0] == 10 * (k + 1)).sum() for k in range(4)]
    np.testing.assert_allclose(areas, painted)  # each tile's full-image polygon = the pixels it painted


def test_close_mosaic_gives_the_letterboxed_image(make_record):
    rec = make_record("c", 64, 48, [np.array([[8, 8], [40, 8], [40, 30]], float)])
    cfg = AugmentConfig(mosaic=1.0, translate=0, scale=0, fliplr=0, hsv_h=0, hsv_s=0, hsv_v=0)
    ds = InstanceSegDataset([rec, rec], imgsz=64, mask_stride=1, augment=cfg, train=True)
    val = InstanceSegDataset([rec, rec], imgsz=64, mask_stride=1, augment=None, train=False)
    assert len(ds[0]["labels"]) >= 2  # the mosaic shows the triangle of several tiles (all the same image)
    ds.close_mosaic()
    after = ds[0]
    assert len(after["labels"]) == 1
    diff = (after["image"].int() - val[0]["image"].int()).abs().float().mean()
    assert diff < 3.0  # same geometry; only the resampling differs (warp vs resize)


def test_empty_and_fully_cropped_targets(make_record):
    empty = make_record("e", 40, 30, [])
    ds = InstanceSegDataset([empty], imgsz=32, mask_stride=4, augment=AugmentConfig(), train=True)
    item = ds[0]
    assert tuple(item["labels"].shape) == (0,) and tuple(item["boxes"].shape) == (0, 4)
    assert tuple(item["masks"].shape) == (0, 8, 8)
    rec = make_record("f", 40, 30, [np.array([[2, 2], [10, 2], [10, 10]], float)])
    s = warp(from_record(rec, np.zeros((30, 40, 3), np.uint8)), G.translation(100, 0), 40, 30)
    t = to_targets(s, 4, 1.0)
    assert t["labels"].shape == (0,) and t["boxes"].shape == (0, 4) and t["masks"].shape == (0, 8, 10)


def test_mask_and_box_only_instances(tmp_path, synth):
    path = synth.write_image(tmp_path / "r.png", 48, 40)
    full = np.zeros((40, 48), np.uint8)
    full[10:30, 5:20] = 1
    full[15:20, 10:15] = 0  # a hole: only an RLE can say this
    rec = ImageRecord(
        path=path,
        width=48,
        height=40,
        instances=[
            Instance(cls=0, rle=mask_to_rle(full)),
            Instance(cls=1, bbox=np.array([30.0, 5.0, 40.0, 15.0])),
        ],
    )
    s = warp(from_record(rec, np.zeros((40, 48, 3), np.uint8)), G.flip_lr(48), 48, 40)
    t = to_targets(s, 1, 1.0)
    np.testing.assert_array_equal(t["masks"][0], full[:, ::-1])
    np.testing.assert_allclose(t["boxes"], [[28, 10, 43, 30], [8, 5, 18, 15]])
    assert t["has_mask"].tolist() == [True, False] and t["masks"][1].sum() == 0
    assert t["areas"][0] == full.sum()


@pytest.mark.parametrize("recipe", ["torchvision", "none"])
def test_other_recipes(make_record, recipe):
    rec = make_record("o", 70, 50, [np.array([[5, 5], [60, 5], [60, 45]], float)])
    ds = InstanceSegDataset([rec], imgsz=64, mask_stride=4, augment=AugmentConfig(recipe=recipe), train=True)
    item = ds[0]
    assert tuple(item["image"].shape) == (3, 64, 64) and len(item["labels"]) == 1
    _check_boxes_tight({k: item[k].numpy() for k in ("boxes", "masks", "has_mask")}, 4)


def test_sample_len_and_size():
    s = Sample(
        image=np.zeros((10, 20, 3), np.uint8),
        cls=np.zeros(0, np.int64),
        polys=[],
        masks=[],
        boxes=np.zeros((0, 4)),
    )
    assert len(s) == 0 and s.size == (20, 10)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mosaic_window_equals_full_canvas(make_record, synth, seed):
    """Building only the window the affine reads gives the same output as the whole 2*imgsz canvas."""
    from instseg.augment.mosaic import mosaic4, mosaic_center, window_for

    rng = np.random.default_rng(seed)
    tiles = [
        from_record(r, np.asarray(__import__("cv2").imread(str(r.path)))[..., ::-1].copy())
        for r in [
            make_record(f"w{i}", 64, 48, [synth.random_polygon(rng, 64, 48) for _ in range(3)], seed=i)
            for i in range(4)
        ]
    ]
    center = mosaic_center(rng, 64)
    m = G.random_affine_matrix(rng, 128, 128, 64, 64, degrees=30, translate=0.2, scale=0.5, shear=5)
    full = warp(mosaic4(tiles, 64, center), m, 64, 64)
    x0, y0, x1, y1 = window_for(m, 64, 64, 128)
    win = warp(mosaic4(tiles, 64, center, (x0, y0, x1, y1)), m @ G.translation(x0, y0), 64, 64)
    assert np.abs(full.image.astype(int) - win.image.astype(int)).max() <= 1  # cv2 fixed-point rounding
    a, b = to_targets(full, 4, 4.0), to_targets(win, 4, 4.0)
    np.testing.assert_array_equal(a["labels"], b["labels"])
    np.testing.assert_allclose(a["boxes"], b["boxes"], atol=1e-4)
    np.testing.assert_array_equal(a["masks"], b["masks"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    mosaic=st.sampled_from([0.0, 1.0]),
    mixup=st.sampled_from([0.0, 1.0]),
    copy_paste=st.sampled_from([0.0, 0.5]),
    degrees=st.floats(0, 30),
    perspective=st.sampled_from([0.0, 0.0005]),
    stride=st.sampled_from([1, 4]),
)
def test_full_recipe_properties(
    tmp_path_factory, synth, seed, mosaic, mixup, copy_paste, degrees, perspective, stride
):
    rng = np.random.default_rng(seed)
    tmp = tmp_path_factory.mktemp("r")
    recs = [
        synth.polygon_record(
            tmp, f"i{i}", 72, 56, [synth.random_polygon(rng, 72, 56) for _ in range(i % 3)], i
        )
        for i in range(3)
    ]
    cfg = AugmentConfig(
        mosaic=mosaic, mixup=mixup, copy_paste=copy_paste, degrees=degrees, perspective=perspective
    )
    ds = InstanceSegDataset(recs, imgsz=64, mask_stride=stride, augment=cfg, train=True, seed=seed)
    t = to_targets(ds.sample(seed % 3), stride, cfg.min_area)
    n = len(t["labels"])
    assert t["boxes"].shape == (n, 4) and t["masks"].shape == (n, 64 // stride, 64 // stride)
    assert (t["areas"] >= cfg.min_area).all() and (t["boxes"] >= 0).all() and (t["boxes"] <= 64).all()
    _check_boxes_tight(t, stride)
