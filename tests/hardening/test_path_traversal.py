"""Hostile names in a COCO JSON or a LabelMe file never make a converter write outside ``--out``:
``../../x.jpg``, absolute paths, ``..``, names with a separator, embedded ``imageData`` under a hostile
``imagePath``. Reading through a ``../`` path or a symlink that leaves the dataset is allowed (read only)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from instseg.data.convert import coco2yolo
from instseg.data.labelme import labelme2yolo
from instseg.data.masks2coco import masks2coco

H, W = 20, 30


def _files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((H, W, 3), 90, np.uint8))
    return path


def _outside_writes(tmp_path: Path, before: dict, out: Path) -> list[str]:
    after = _files(tmp_path)
    changed = [p for p, t in after.items() if before.get(p) != t]
    return [p for p in changed if not Path(p).resolve().is_relative_to(out.resolve())]


HOSTILE = ["../../x.jpg", "../x.jpg", "/ABS/x.jpg", "sub/../../x.jpg", "..", ".", "a/b/../../../x.jpg"]


@pytest.mark.parametrize("file_name", HOSTILE)
def test_coco2yolo_writes_only_under_out(tmp_path, file_name):
    victim = _png(tmp_path / "x.jpg")  # what ../../x.jpg and the absolute name reach from data/images
    images = tmp_path / "data" / "images"
    _png(images / "ok.jpg")
    name = file_name.replace("/ABS", str(tmp_path))
    coco = {"images": [{"id": 1, "file_name": name, "width": W, "height": H},
                       {"id": 2, "file_name": "ok.jpg", "width": W, "height": H}],
            "annotations": [{"id": k, "image_id": k, "category_id": 1, "iscrowd": 0, "area": 50,
                             "bbox": [2, 2, 10, 5], "segmentation": [[2, 2, 12, 2, 12, 7, 2, 7]]} for k in (1, 2)],
            "categories": [{"id": 1, "name": "thing"}]}
    js = tmp_path / "data" / "train.json"
    js.write_text(json.dumps(coco))
    out = tmp_path / "out"
    before = _files(tmp_path)
    report = coco2yolo(js, images, out)
    assert _outside_writes(tmp_path, before, out) == []
    assert victim.read_bytes() == cv2.imencode(".jpg", np.full((H, W, 3), 90, np.uint8))[1].tobytes() or victim.exists()
    written = sorted(p.name for p in (out / "labels" / "train").iterdir())
    assert "ok.txt" in written and all("/" not in n and n not in ("..", ".") for n in written)
    assert report.images["train"] >= 1


@pytest.mark.parametrize("image_path", HOSTILE + ["..\\..\\x.jpg", "x.sh", "evil.jpg/..", ""])
@pytest.mark.parametrize("embed", [True, False])
def test_labelme2yolo_writes_only_under_out(tmp_path, image_path, embed):
    _png(tmp_path / "x.jpg")
    lm = tmp_path / "data" / "lm"
    lm.mkdir(parents=True)
    ok, buf = cv2.imencode(".png", np.full((H, W, 3), 10, np.uint8))
    doc = {"shapes": [{"label": "a", "points": [[1, 1], [10, 1], [10, 8]], "shape_type": "polygon"}],
           "imagePath": image_path.replace("/ABS", str(tmp_path)), "imageHeight": H, "imageWidth": W,
           "imageData": base64.b64encode(buf.tobytes()).decode() if embed else None}
    (lm / "one.json").write_text(json.dumps(doc))
    out = tmp_path / "out"
    before = _files(tmp_path)
    try:
        report = labelme2yolo(lm, out)
    except Exception as e:  # an instseg error is fine (nothing usable); anything else is a bug
        from instseg.errors import InstsegError

        assert isinstance(e, InstsegError), repr(e)
        report = None
    assert _outside_writes(tmp_path, before, out) == []
    if report is not None and report.images.get("train"):
        names = [p.name for p in (out / "images" / "train").iterdir()]
        assert names == ["one" + Path(names[0]).suffix]
        assert Path(names[0]).suffix in (".jpg", ".png", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def test_labelme_reads_through_dotdot_but_writes_inside(tmp_path):
    """A LabelMe file next to ../images/a.jpg (a real layout) reads the image and writes it under --out."""
    _png(tmp_path / "data" / "images" / "a.jpg")
    lm = tmp_path / "data" / "json"
    lm.mkdir(parents=True)
    (lm / "a.json").write_text(json.dumps({
        "shapes": [{"label": "a", "points": [[1, 1], [10, 1], [10, 8]], "shape_type": "polygon"}],
        "imagePath": "../images/a.jpg", "imageHeight": H, "imageWidth": W, "imageData": None}))
    report = labelme2yolo(lm, tmp_path / "out")
    assert report.images == {"train": 1} and (tmp_path / "out" / "images" / "train" / "a.jpg").is_file()


def test_symlink_leaving_the_dataset_is_read_not_written(tmp_path):
    """An image symlinked from outside the dataset is copied (read); the original is never modified."""
    victim = _png(tmp_path / "elsewhere" / "v.jpg")
    stamp = victim.stat().st_mtime_ns
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    os.symlink(victim, images / "v.jpg")
    coco = {"images": [{"id": 1, "file_name": "v.jpg", "width": W, "height": H}], "annotations": [],
            "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "data" / "train.json").write_text(json.dumps(coco))
    out = tmp_path / "out"
    coco2yolo(tmp_path / "data" / "train.json", images, out)
    coco2yolo(tmp_path / "data" / "train.json", images, out)  # twice: the existing output is replaced
    assert victim.stat().st_mtime_ns == stamp and (out / "images" / "train" / "v.jpg").is_file()
    assert not (out / "images" / "train" / "v.jpg").is_symlink()


def test_masks2coco_writes_only_the_json(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    _png(images / "a.jpg")
    m = np.zeros((H, W), np.uint8)
    m[2:9, 3:12] = 1
    masks.mkdir()
    cv2.imwrite(str(masks / "a.png"), m)
    before = _files(tmp_path)
    out = tmp_path / "out"
    masks2coco(images, masks, out / "c.json")
    assert _outside_writes(tmp_path, before, out) == []
