"""masks2coco: instance-id PNGs (8/16-bit) and binary per-instance PNGs, class maps, and the findings."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from instseg.cli import app
from instseg.data.coco import load_coco
from instseg.data.masks import rle_to_mask
from instseg.data.masks2coco import masks2coco
from instseg.errors import ConversionError

H, W = 24, 32


def _setup(tmp_path: Path) -> tuple[Path, Path, dict[str, list[np.ndarray]]]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    expected: dict[str, list[np.ndarray]] = {}
    for stem in ("a", "b", "c", "d"):
        cv2.imwrite(str(images / f"{stem}.jpg"), np.zeros((H, W, 3), np.uint8))
    # a: 16-bit instance-id PNG with ids 3 and 700 (ids need not be contiguous)
    ids = np.zeros((H, W), np.uint16)
    ids[2:6, 2:10] = 3
    ids[10:20, 5:25] = 700
    ids[12:15, 10:14] = 0  # a hole in instance 700
    cv2.imwrite(str(masks / "a.png"), ids)
    expected["a"] = [(ids == 3), (ids == 700)]
    # b: binary PNGs <stem>_<k>.png
    m1 = np.zeros((H, W), np.uint8)
    m1[0:4, 0:4] = 255
    m2 = np.zeros((H, W), np.uint8)
    m2[20:24, 28:32] = 1
    cv2.imwrite(str(masks / "b_1.png"), m1)
    cv2.imwrite(str(masks / "b_2.png"), m2)
    expected["b"] = [m1 > 0, m2 > 0]
    # c: binary PNGs in a folder <stem>/<k>.png, one of the wrong size and one empty
    (masks / "c").mkdir()
    m3 = np.zeros((H, W), np.uint8)
    m3[5:9, 5:9] = 1
    cv2.imwrite(str(masks / "c" / "1.png"), m3)
    cv2.imwrite(str(masks / "c" / "2.png"), np.ones((H + 1, W), np.uint8))
    cv2.imwrite(str(masks / "c" / "3.png"), np.zeros((H, W), np.uint8))
    expected["c"] = [m3 > 0]
    expected["d"] = []  # no mask: a background image
    return images, masks, expected


def test_both_layouts_one_class(tmp_path):
    images, masks, expected = _setup(tmp_path)
    out, findings = masks2coco(images, masks, tmp_path / "ann.json", class_name="part")
    ds = load_coco(out)
    assert ds.names == ["part"] and not ds.findings
    by_stem = {r.path.stem: r for r in ds.records}
    assert set(by_stem) == set(expected)
    for stem, masks_expected in expected.items():
        got = [rle_to_mask(i.rle) for i in by_stem[stem].instances]
        assert len(got) == len(masks_expected), stem
        for g, e in zip(got, masks_expected):
            np.testing.assert_array_equal(g, e.astype(np.uint8))
    coco = json.loads(out.read_text())
    assert coco["annotations"][1]["area"] == 200 - 12  # the hole is not counted
    codes = sorted(f.code for f in findings)
    assert codes == ["background-images", "empty-mask", "mask-size-mismatch"]
    mismatch = next(f for f in findings if f.code == "mask-size-mismatch")
    assert mismatch.file == masks / "c" / "2.png" and "32x25" in mismatch.message


def test_class_map(tmp_path):
    images, masks, _ = _setup(tmp_path)
    cmap = tmp_path / "classes.yaml"
    cmap.write_text("a/3: wheel\na/700: door\nb_1: wheel\n")
    out, findings = masks2coco(images, masks, tmp_path / "ann.json", class_map=cmap)
    ds = load_coco(out)
    assert ds.names == ["door", "wheel"]
    by_stem = {r.path.stem: [i.cls for i in r.instances] for r in ds.records}
    assert by_stem["a"] == [1, 0] and by_stem["b"] == [1] and by_stem["c"] == []
    missing = [f for f in findings if f.code == "no-class"]
    assert len(missing) == 2 and "b/2" in missing[0].action
    # with a fallback class, unlisted instances get it
    out, findings = masks2coco(images, masks, tmp_path / "ann2.json", class_map=cmap, class_name="other")
    assert load_coco(out).names == ["door", "other", "wheel"]
    assert not [f for f in findings if f.code == "no-class"]


@pytest.mark.parametrize(
    "setup, match",
    [
        ("no-images", "no image files found"),
        ("no-masks-dir", "--masks .*not a folder"),
        ("bad-map", "class map is a mapping"),
    ],
)
def test_errors(tmp_path, setup, match):
    images, masks, _ = _setup(tmp_path)
    kwargs = {}
    if setup == "no-images":
        images = tmp_path / "empty"
        images.mkdir()
    elif setup == "no-masks-dir":
        masks = tmp_path / "missing"
    else:
        (tmp_path / "m.yaml").write_text("- a\n- b\n")
        kwargs["class_map"] = tmp_path / "m.yaml"
    with pytest.raises(ConversionError, match=match):
        masks2coco(images, masks, tmp_path / "x.json", **kwargs)


def test_color_instance_png_is_rejected(tmp_path):
    images, masks, _ = _setup(tmp_path)
    cv2.imwrite(str(masks / "d.png"), np.zeros((H, W, 3), np.uint8))
    _, findings = masks2coco(images, masks, tmp_path / "x.json")
    bad = [f for f in findings if f.code == "bad-mask"]
    assert len(bad) == 1 and bad[0].file == masks / "d.png" and "one channel" in bad[0].message


def test_cli(tmp_path):
    images, masks, _ = _setup(tmp_path)
    out = tmp_path / "ann.json"
    result = CliRunner().invoke(
        app, ["convert", "masks2coco", "--images", str(images), "--masks", str(masks), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "1 error" in result.output
    assert [c["name"] for c in json.loads(out.read_text())["categories"]] == ["object"]
