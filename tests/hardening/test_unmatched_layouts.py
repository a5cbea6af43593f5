"""Layouts matched by file name that used to fail quietly: 100% unmatched is an error naming what was seen."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from instseg.cli import app
from instseg.data.checks import load_split
from instseg.data.labelme import labelme2yolo
from instseg.data.masks2coco import masks2coco
from instseg.data.types import Severity
from instseg.errors import ConversionError

H, W = 24, 32


def _layout(tmp_path: Path, image_stems: list[str], mask_name) -> tuple[Path, Path]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for k, stem in enumerate(image_stems):
        cv2.imwrite(str(images / f"{stem}.png"), np.full((H, W, 3), 100, np.uint8))
        m = np.zeros((H, W), np.uint16 if "instanceIds" in mask_name(stem) else np.uint8)
        m[2:10, 2:12] = 1 if "instanceIds" not in mask_name(stem) else 26001  # Cityscapes: car, instance 1
        m[12:20, 14:30] = 2 if "instanceIds" not in mask_name(stem) else 26002
        if "instanceIds" in mask_name(stem):
            m[0:2, :] = 7  # a class-only region (road): not an instance
        cv2.imwrite(str(masks / mask_name(stem)), m)
    return images, masks


@pytest.mark.parametrize("mask_name", [
    lambda s: f"{s}.png", lambda s: f"{s}_mask.png", lambda s: f"{s}-mask.png", lambda s: f"{s}_masks.png",
    lambda s: f"{s}_instanceIds.png",
    lambda s: s.replace("_leftImg8bit", "_gtFine_instanceIds") + ".png",
], ids=["stem", "_mask", "-mask", "_masks", "_instanceIds", "cityscapes"])
def test_usual_mask_names_are_found(tmp_path, mask_name):
    stems = ["aachen_000000_000019_leftImg8bit", "aachen_000001_000019_leftImg8bit"]
    images, masks = _layout(tmp_path, stems, mask_name)
    path, findings = masks2coco(images, masks, tmp_path / "c.json")
    coco = json.loads(path.read_text())
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 4  # the road region is not an instance
    assert sorted(a["area"] for a in coco["annotations"]) == [80, 80, 128, 128]
    assert not any(f.code == "background-images" for f in findings)


def test_mask_pattern_and_the_unmatched_error(tmp_path):
    images, masks = _layout(tmp_path, ["FudanPed00001", "FudanPed00002"], lambda s: f"gt_{s}_label.png")
    with pytest.raises(ConversionError) as e:
        masks2coco(images, masks, tmp_path / "c.json")
    msg = str(e.value)
    assert "'gt_FudanPed00001_label.png', 'gt_FudanPed00002_label.png'" in msg
    assert "{stem}_mask.png" in msg and "--mask-pattern" in msg and "2 images" in msg
    assert not (tmp_path / "c.json").exists()
    path, _ = masks2coco(images, masks, tmp_path / "c.json", mask_pattern="gt_{stem}_label")
    assert len(json.loads(path.read_text())["annotations"]) == 4
    with pytest.raises(ConversionError, match="mask-pattern"):
        masks2coco(images, masks, tmp_path / "d.json", mask_pattern="../{stem}.png")
    r = CliRunner().invoke(app, ["convert", "masks2coco", "--images", str(images), "--masks", str(masks),
                                 "--out", str(tmp_path / "e.json"), "--mask-pattern", "gt_{stem}_label.png"])
    assert r.exit_code == 0, r.output
    assert len(json.loads((tmp_path / "e.json").read_text())["annotations"]) == 4


def test_some_background_images_stay_an_info(tmp_path):
    images, masks = _layout(tmp_path, ["a", "b"], lambda s: f"{s}_mask.png")
    cv2.imwrite(str(images / "c.png"), np.zeros((H, W, 3), np.uint8))  # no mask: a background image
    _, findings = masks2coco(images, masks, tmp_path / "c.json")
    assert [f.severity for f in findings if f.code == "background-images"] == [Severity.INFO]


def test_labelme_without_any_image_is_an_error(tmp_path):
    lm = tmp_path / "lm"
    lm.mkdir()
    for stem in ("a", "b"):
        (lm / f"{stem}.json").write_text(json.dumps({
            "shapes": [], "imagePath": f"../pics/{stem}.jpg", "imageHeight": H, "imageWidth": W}))
    with pytest.raises(ConversionError, match=r"none of the 2 LabelMe files has its image \(imagePath '../pics/a.jpg'"):
        labelme2yolo(lm, tmp_path / "out")


def test_labels_in_the_wrong_folder_is_fatal_and_says_where(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "annotations").mkdir()
    for stem in ("a", "b"):
        cv2.imwrite(str(tmp_path / "images" / "train" / f"{stem}.jpg"), np.zeros((H, W, 3), np.uint8))
        (tmp_path / "images" / "train" / f"{stem}_seg.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/train\nnames: [x]\n")
    _, findings = load_split(tmp_path / "data.yaml", "train")
    fatal = [f for f in findings if f.severity == Severity.FATAL]
    assert len(fatal) == 1 and "a.jpg would be labelled by" in fatal[0].message
    assert str(tmp_path / "labels" / "train" / "a.txt") in fatal[0].message
