from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instseg.data.coco_checks import scan_coco
from instseg.data.types import Severity


def _coco(
    tmp_path: Path, images: list[tuple[str, int, int]], anns: list[tuple[int, int]], cat_ids=(3, 7)
) -> Path:
    data = {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, (f, w, h) in enumerate(images)],
        "annotations": [
            {
                "id": k + 1,
                "image_id": img,
                "category_id": cat,
                "iscrowd": 0,
                "segmentation": [[2, 2, 20, 2, 20, 20]],
                "bbox": [2, 2, 18, 18],
                "area": 162,
            }
            for k, (img, cat) in enumerate(anns)
        ],
        "categories": [{"id": c, "name": f"c{c}"} for c in cat_ids],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def _img(path: Path, size=(40, 30), orientation=None):
    img = Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8))
    kw = {}
    if orientation:
        exif = img.getexif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    img.save(path, **kw)


def test_coco_findings(tmp_path):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg")  # no annotation: background
    _img(tmp_path / "c.jpg", size=(50, 30))  # JSON says 40x30
    _img(tmp_path / "d.jpg", orientation=6)  # displayed 30x40, JSON has the stored 40x30
    _img(tmp_path / "extra.jpg")  # not listed
    sizes = [("a.jpg", 40, 30), ("b.jpg", 40, 30), ("c.jpg", 40, 30), ("d.jpg", 40, 30)]
    report = scan_coco(_coco(tmp_path, sizes, [(0, 3), (0, 7), (2, 3), (3, 7)]))
    codes = Counter(f.code for f in report.findings)
    assert codes == {"category-ids": 1, "no-annotations": 1, "size-mismatch": 2, "unlisted-image": 1}
    d = next(f for f in report.findings if f.code == "size-mismatch" and f.file.name == "d.jpg")
    assert "before EXIF rotation" in d.message and d.severity is Severity.ERROR
    cats = next(f for f in report.findings if f.code == "category-ids")
    assert "3->0, 7->1" in cats.action
    (s,) = report.splits.values()
    assert (s.images, s.skipped_images, s.labelled, s.background, s.instances) == (2, 2, 1, 1, 2)
    assert s.class_counts == [1, 1] and not report.fatal


def test_no_usable_image_is_fatal(tmp_path):
    report = scan_coco(_coco(tmp_path, [("missing.jpg", 40, 30)], [(0, 3)]))
    assert report.fatal
    assert {f.code for f in report.findings} >= {"image-not-found", "empty-split"}


@pytest.mark.parametrize(
    "json_rel, n_images, n_instances, ncls",
    [("train/COCO_mul_train_annos.json", 59, 177, 5), ("val/COCO_val_annos.json", 11, 24, 1)],
)
def test_car_damage(car_damage_coco, json_rel, n_images, n_instances, ncls):
    report = scan_coco(car_damage_coco / json_rel)
    assert [f.code for f in report.findings] == ["category-ids"]  # ids start at 1: the one quirk
    (s,) = report.splits.values()
    assert (s.images, s.instances, len(s.class_counts)) == (n_images, n_instances, ncls)
