"""LabelMe -> YOLO: every closed shape type, groups, embedded images, unknown shapes, names and the split."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from instseg.cli import app
from instseg.data.labelme import circle_polygon, labelme2yolo
from instseg.data.masks import mask_iou, polygon_area, polygons_to_rle, rle_area
from instseg.data.yolo import parse_yolo_labels
from instseg.errors import ConversionError

H, W = 40, 60


def _png_b64(arr: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def _doc(image_name: str, shapes: list[dict], embed: np.ndarray | None = None) -> dict:
    return {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_name,
        "imageData": _png_b64(embed) if embed is not None else None,
        "imageHeight": H,
        "imageWidth": W,
    }


def _shape(label, kind, points, **extra) -> dict:
    return {"label": label, "points": points, "group_id": None, "shape_type": kind, "flags": {}, **extra}


def _write(folder: Path, stem: str, doc: dict, with_image: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if with_image:
        cv2.imwrite(str(folder / doc["imagePath"]), np.zeros((H, W, 3), np.uint8))
    (folder / f"{stem}.json").write_text(json.dumps(doc))


@pytest.fixture
def labelme_dir(tmp_path) -> Path:
    d = tmp_path / "lm"
    mask = np.zeros((10, 12), np.uint8)
    mask[2:8, 3:9] = 255
    mask[4:6, 5:7] = 0  # a hole
    _write(
        d,
        "one",
        _doc(
            "one.png",
            [
                _shape("cat", "polygon", [[1, 1], [11, 1], [11, 9], [1, 9]]),
                _shape("dog", "rectangle", [[30, 20], [20, 10]]),  # corners in any order
                _shape("dog", "circle", [[45, 25], [45, 33]]),
                _shape("cat", "line", [[0, 0], [5, 5]]),
                _shape("cat", "point", [[3, 3]]),
            ],
        ),
    )
    _write(
        d,
        "two",
        _doc(
            "two.png",
            [
                _shape("bird", "polygon", [[1, 1], [6, 1], [6, 6]], group_id=1),
                _shape(
                    "bird", "polygon", [[40, 30], [50, 30], [50, 38]], group_id=1
                ),  # same object, second part
                _shape("cat", "mask", [[20, 5], [31, 14]], mask=_png_b64(mask)),
                _shape("cat", "polygon", [[1, 1], [2, 2]]),
            ],
            embed=np.full((H, W, 3), 7, np.uint8),
        ),
        with_image=False,
    )  # only the embedded image
    _write(d / "sub", "three", _doc("three.png", []))
    (d / "notes.json").write_text('{"not": "labelme"}')
    return d


def _labels(out: Path, split: str, stem: str, nc: int):
    insts, findings = parse_yolo_labels(out / "labels" / split / f"{stem}.txt", W, H, nc)
    assert not findings
    return insts


def test_shapes_become_yolo_polygons(labelme_dir, tmp_path):
    out = tmp_path / "out"
    report = labelme2yolo(labelme_dir, out)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert list(data["names"].values()) == ["bird", "cat", "dog"]  # sorted labels
    assert report.images == {"train": 3} and report.instances == 5
    one = _labels(out, "train", "one", 3)
    assert [i.cls for i in one] == [1, 2, 2]
    assert rle_area(polygons_to_rle(one[0].polygons, H, W)) == 80
    np.testing.assert_allclose(one[1].polygons[0], [[20, 10], [30, 10], [30, 20], [20, 20]], atol=1e-4)
    assert polygon_area(one[2].polygons[0]) == pytest.approx(np.pi * 64, rel=1e-5)
    two = _labels(out, "train", "two", 3)
    assert [i.cls for i in two] == [0, 1]
    bird = polygons_to_rle(two[0].polygons, H, W)
    parts = polygons_to_rle(
        [np.array([[1, 1], [6, 1], [6, 6]]), np.array([[40, 30], [50, 30], [50, 38]])], H, W
    )
    assert mask_iou(bird, parts) > 0.99
    full = np.zeros((H, W), np.uint8)
    full[7:13, 23:29] = 1
    full[9:11, 25:27] = 0
    assert mask_iou(polygons_to_rle(two[1].polygons, H, W), full) > 0.99  # the hole survives
    assert cv2.imread(str(out / "images" / "train" / "two.png"))[0, 0, 0] == 7  # written from imageData
    assert (out / "labels" / "train" / "three.txt").read_text() == ""
    codes = sorted(f.code for f in report.findings)
    assert codes == ["bad-shape", "unsupported-shape", "unsupported-shape"]
    assert any("shape_type 'line'" in f.message and f.file.name == "one.json" for f in report.findings)
    assert report.joined == 2 and report.min_iou > 0.99


def test_names_fix_the_order_and_unknown_labels_are_reported(labelme_dir, tmp_path):
    report = labelme2yolo(labelme_dir, tmp_path / "out", names=["dog", "cat"])
    one = _labels(tmp_path / "out", "train", "one", 2)
    assert [i.cls for i in one] == [1, 0, 0]
    unknown = [f for f in report.findings if f.code == "unknown-label"]
    assert len(unknown) == 2 and "'bird'" in unknown[0].message


@pytest.mark.parametrize("val, seed, n_val", [(0.0, 0, 0), (0.34, 0, 1), (0.67, 3, 2)])
def test_val_split(labelme_dir, tmp_path, val, seed, n_val):
    report = labelme2yolo(labelme_dir, tmp_path / "out", val=val, seed=seed)
    assert report.images.get("val", 0) == n_val and report.images["train"] == 3 - n_val
    again = labelme2yolo(labelme_dir, tmp_path / "again", val=val, seed=seed)
    assert (
        sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir())
        == sorted(p.name for p in (tmp_path / "again" / "images" / "train").iterdir())
        and again.images == report.images
    )


@pytest.mark.parametrize("radius", [0.05, 2.0, 50.0, 5000.0])
def test_circle_polygon_stays_close(radius):
    poly = circle_polygon(np.array([0.0, 0.0]), np.array([radius, 0.0]))
    assert 16 <= len(poly) <= 720
    assert polygon_area(poly) == pytest.approx(np.pi * radius**2, rel=1e-9)  # area kept
    if len(poly) < 720:  # vertices and chord midpoints within 0.1 px of the circle
        vertex_r = np.hypot(*poly.T)
        assert np.abs(vertex_r - radius).max() <= 0.1
        assert np.abs(vertex_r * np.cos(np.pi / len(poly)) - radius).max() <= 0.1


def test_errors(tmp_path):
    with pytest.raises(ConversionError, match="no LabelMe .json files"):
        labelme2yolo(tmp_path, tmp_path / "out")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ConversionError, match="none of the 1 JSON files is a LabelMe file"):
        labelme2yolo(tmp_path, tmp_path / "out")
    with pytest.raises(ConversionError, match="val fraction"):
        labelme2yolo(tmp_path, tmp_path / "out", val=1.0)
    (tmp_path / "bad.json").write_text('{"shapes": [}')
    _write(tmp_path, "ok", _doc("ok.png", [_shape("a", "polygon", [[1, 1], [5, 1], [5, 5]])]))
    _write(tmp_path, "gone", _doc("gone.png", []), with_image=False)
    bad_size = _doc("sized.png", [])
    bad_size["imageWidth"] = "wide"
    _write(tmp_path, "sized", bad_size)
    report = labelme2yolo(tmp_path, tmp_path / "out")
    assert report.images == {"train": 1}
    found = {f.code: f for f in report.findings}
    assert found["bad-json"].file.name == "bad.json" and found["bad-json"].line == 1
    assert found["image-not-found"].file.name == "gone.json"
    assert found["bad-labelme"].file.name == "sized.json" and "'wide'" in found["bad-labelme"].message


def test_cli(labelme_dir, tmp_path):
    args = [
        "convert",
        "labelme2yolo",
        "--input",
        str(labelme_dir),
        "--out",
        str(tmp_path / "o"),
        "--names",
        "cat,dog,bird",
        "--val",
        "0.34",
        "--seed",
        "1",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "train: 2 images" in result.output and "val: 1 images" in result.output
    assert yaml.safe_load((tmp_path / "o" / "data.yaml").read_text())["names"] == {
        0: "cat",
        1: "dog",
        2: "bird",
    }


BAD_IMAGE_PATHS = {
    "too-long": ("x" * 5000 + ".png", "File name too long"),  # OSError ENAMETOOLONG
    "lone-surrogate": ("a\ud800b.png", "surrogates not allowed"),  # UnicodeEncodeError
    "nul": ("a\x00b.png", "null"),  # ValueError: embedded null byte
}


def _bad_path_dir(tmp_path: Path, image_path: str, embed: bool) -> Path:
    d = tmp_path / "lm"
    poly = [_shape("a", "polygon", [[1, 1], [9, 1], [9, 9]])]
    _write(d, "good", _doc("good.png", poly))
    doc = _doc("placeholder.png", poly, embed=np.zeros((H, W, 3), np.uint8) if embed else None)
    doc["imagePath"] = image_path
    # json.dumps escapes the surrogate as \ud800: the file itself is valid UTF-8, as LabelMe writes it
    _write(d, "bad", doc, with_image=False)
    return d


@pytest.mark.parametrize("kind", BAD_IMAGE_PATHS)
def test_unusable_image_path_is_a_finding_and_the_rest_converts(tmp_path, kind):
    image_path, why = BAD_IMAGE_PATHS[kind]
    report = labelme2yolo(_bad_path_dir(tmp_path, image_path, embed=False), tmp_path / "out")
    assert report.images == {"train": 1}
    [finding] = [f for f in report.findings if f.code == "bad-image-path"]
    assert finding.file.name == "bad.json" and finding.severity.name == "ERROR"
    assert "imagePath" in finding.message and why in finding.message and "file skipped" in finding.action
    assert len(str(finding)) < 400  # a 5000-character imagePath is shortened
    str(finding).encode("utf-8")  # printable: the surrogate is escaped
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir()) == ["good.png"]


@pytest.mark.parametrize("kind", BAD_IMAGE_PATHS)
def test_unusable_image_path_with_image_data_uses_the_embedded_image(tmp_path, kind):
    image_path, _ = BAD_IMAGE_PATHS[kind]
    report = labelme2yolo(_bad_path_dir(tmp_path, image_path, embed=True), tmp_path / "out")
    assert report.images == {"train": 2}
    [finding] = [f for f in report.findings if f.code == "bad-image-path"]
    assert finding.file.name == "bad.json" and finding.severity.name == "WARNING" and "imageData" in finding.action


@pytest.mark.parametrize("kind", ["too-long", "lone-surrogate"])
def test_cli_unusable_image_path_is_one_line(tmp_path, kind):
    d = _bad_path_dir(tmp_path, BAD_IMAGE_PATHS[kind][0], embed=False)
    result = CliRunner().invoke(app, ["convert", "labelme2yolo", "--input", str(d), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    [line] = [ln for ln in result.output.splitlines() if "bad.json" in ln]
    assert "imagePath" in line and "file skipped" in line
    assert "train: 1 images" in result.output
