from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from instseg.data.demo import DEMO_NAMES, make_demo_dataset, shape_polygon
from instseg.data.yaml_config import list_split_images, load_data_yaml
from instseg.data.yolo import parse_yolo_labels


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_deterministic(tmp_path):
    make_demo_dataset(tmp_path / "a", n_train=12, n_val=4, imgsz=160, seed=0)
    make_demo_dataset(tmp_path / "b", n_train=12, n_val=4, imgsz=160, seed=0)
    make_demo_dataset(tmp_path / "c", n_train=12, n_val=4, imgsz=160, seed=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


@pytest.mark.parametrize("n_train, n_val, imgsz", [(3, 2, 64), (12, 4, 160)])
def test_layout_and_contents(tmp_path, n_train, n_val, imgsz):
    spec = load_data_yaml(make_demo_dataset(tmp_path, n_train=n_train, n_val=n_val, imgsz=imgsz, seed=3))
    assert spec.names == DEMO_NAMES and spec.root == tmp_path.resolve()
    train, val = list_split_images(spec, "train"), list_split_images(spec, "val")
    assert (len(train), len(val)) == (n_train, n_val)
    for img in train + val:
        instances, findings = parse_yolo_labels(
            img.parent.parent.parent / "labels" / img.parent.name / f"{img.stem}.txt",
            imgsz,
            imgsz,
            len(DEMO_NAMES),
        )
        assert findings == [] and 2 <= len(instances) <= 6
        assert all(inst.has_mask for inst in instances)


def test_variety(demo_data):
    """Over the 12 + 4 images: every class, sizes spanning > 4x, overlapping masks, rings with a hole."""
    from instseg.data.masks import polygons_to_rle, rle_to_mask

    spec = load_data_yaml(demo_data)
    classes, areas, overlaps = set(), [], 0
    for split in ("train", "val"):
        for img in list_split_images(spec, split):
            lab = img.parent.parent.parent / "labels" / split / f"{img.stem}.txt"
            instances, _ = parse_yolo_labels(lab, 160, 160, 4)
            masks = [rle_to_mask(polygons_to_rle(i.polygons, 160, 160)) for i in instances]
            classes |= {i.cls for i in instances}
            areas += [int(m.sum()) for m in masks]
            overlaps += sum(int((masks[a] & masks[b]).any()) for a in range(len(masks)) for b in range(a))
    assert classes == {0, 1, 2, 3}
    assert max(areas) > 4 * min(areas) and min(areas) > 0
    assert overlaps >= 3


@pytest.mark.parametrize("cls, hole", [(0, False), (1, False), (2, False), (3, True)])
def test_shape_rasterizes_with_hole_only_for_ring(cls, hole):
    from instseg.data.masks import polygons_to_rle, rle_to_mask

    poly = shape_polygon(cls, np.array([50.0, 50.0]), 40.0, 0.3)
    mask = rle_to_mask(polygons_to_rle([poly], 100, 100))
    assert mask[50, 50] == (0 if hole else 1)
    if hole:  # the band between the radii is filled; the hole is about (r/2)^2 * pi pixels
        assert mask[50, 50 + 30] == 1 and mask[50 + 30, 50] == 1
        disk = rle_to_mask(polygons_to_rle([shape_polygon(0, np.array([50.0, 50.0]), 40.0, 0.3)], 100, 100))
        assert abs((disk.sum() - mask.sum()) / (np.pi * 20**2) - 1) < 0.05


@pytest.mark.parametrize("kw", [{"n_train": 0}, {"n_val": 0}, {"imgsz": 16}])
def test_bad_arguments(tmp_path, kw):
    with pytest.raises(ValueError):
        make_demo_dataset(tmp_path, **kw)
