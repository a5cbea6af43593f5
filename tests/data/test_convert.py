"""YOLO <-> COCO conversion: self-evaluation AP 1.0, lossless round trips, joined rings and their IoU."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from instseg.cli import app
from instseg.data.coco import records_to_coco, write_json_atomic
from instseg.data.convert import coco2yolo, guess_split, yolo2coco
from instseg.data.masks import mask_iou, mask_to_rle, polygons_to_rle
from instseg.data.types import ImageRecord, Instance
from instseg.data.yolo import parse_yolo_labels
from instseg.errors import ConversionError


def _numbers(path: Path) -> list[np.ndarray]:
    if not path.exists():
        return []
    return [np.array(line.split(), float) for line in path.read_text().splitlines() if line.strip()]


def _assert_same_labels(src_labels: Path, dst_labels: Path, stems: list[str]) -> int:
    """Every label file of ``stems`` has the same lines to 1e-6; returns the number of lines compared."""
    n = 0
    for stem in stems:
        a, b = _numbers(src_labels / f"{stem}.txt"), _numbers(dst_labels / f"{stem}.txt")
        assert len(a) == len(b), stem
        for la, lb in zip(a, b):
            assert la.shape == lb.shape and la[0] == lb[0], stem
            np.testing.assert_allclose(la, lb, atol=1e-6, rtol=0)
            n += 1
    return n


def _self_eval(json_path: Path) -> dict[str, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(json_path))
        preds = []
        for a in gt.dataset["annotations"]:
            rle = gt.annToRLE(a)
            preds.append(
                {
                    "image_id": a["image_id"],
                    "category_id": a["category_id"],
                    "score": 1.0,
                    "segmentation": rle,
                    "bbox": a["bbox"],
                }
            )
        dt = gt.loadRes(preds)
        out = {}
        for iou_type in ("segm", "bbox"):
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[iou_type] = float(ev.stats[0])
    return out


def test_demo_round_trip_and_self_evaluation(demo_data, tmp_path):
    jsons = yolo2coco(demo_data, tmp_path / "coco")
    assert set(jsons) == {"train", "val"}
    for path in jsons.values():
        assert _self_eval(path) == {"segm": pytest.approx(1.0), "bbox": pytest.approx(1.0)}
    report = coco2yolo([jsons["train"], jsons["val"]], None, tmp_path / "yolo")
    assert report.images == {"train": 12, "val": 4} and report.min_iou == 1.0 and not report.findings
    back = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    orig = yaml.safe_load(demo_data.read_text())
    assert list(back["names"].values()) == list(orig["names"])
    root = demo_data.parent
    for split, count in (("train", 12), ("val", 4)):
        stems = [f"{i:04d}" for i in range(count)]
        assert (
            _assert_same_labels(root / "labels" / split, tmp_path / "yolo" / "labels" / split, stems) > count
        )


def _tiny_yolo(root: Path) -> Path:
    """Polygons, a box-only line, a background image, a class never used, non-square images."""
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    lines = {
        "a": "0 0.1 0.1 0.5 0.1 0.5 0.6 0.1 0.6\n2 0.6 0.2 0.9 0.25 0.8 0.9\n",
        "b": "2 0.5 0.5 0.2 0.3\n0 0.123457 0.2 0.3 0.2 0.2 0.777777\n",
        "c": None,  # background image: no label file
    }
    for stem, text in lines.items():
        cv2.imwrite(str(root / "images" / "train" / f"{stem}.png"), np.zeros((30, 50, 3), np.uint8))
        if text is not None:
            (root / "labels" / "train" / f"{stem}.txt").write_text(text)
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [ant, bee, cow]\n")
    return root / "data.yaml"


def test_box_only_lines_and_backgrounds_survive(tmp_path):
    data = _tiny_yolo(tmp_path / "ds")
    jsons = yolo2coco(data, tmp_path / "coco")
    coco = json.loads(jsons["train"].read_text())
    assert [c["name"] for c in coco["categories"]] == ["ant", "bee", "cow"]
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert len(coco["images"]) == 3 and len(coco["annotations"]) == 4
    box = next(a for a in coco["annotations"] if a.get("instseg_box_only"))
    assert box["bbox"] == pytest.approx([20.0, 10.5, 10.0, 9.0]) and box["category_id"] == 3
    assert _self_eval(jsons["train"])["segm"] == pytest.approx(1.0)
    coco2yolo(jsons["train"], None, tmp_path / "back", splits=["train"])
    n = _assert_same_labels(
        tmp_path / "ds" / "labels" / "train", tmp_path / "back" / "labels" / "train", ["a", "b", "c"]
    )
    assert n == 4
    assert (tmp_path / "back" / "labels" / "train" / "c.txt").read_text() == ""  # explicit background


def test_coco128_files_round_trip(coco128_seg, tmp_path):
    images = sorted((coco128_seg / "images" / "train2017").glob("*.jpg"))[:10]
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in images))
    names = yaml.safe_load((coco128_seg / "data.yaml").read_text())["names"]
    (tmp_path / "data.yaml").write_text(
        yaml.safe_dump({"train": "list.txt", "val": "list.txt", "names": names})
    )
    jsons = yolo2coco(tmp_path / "data.yaml", tmp_path / "coco")
    assert _self_eval(jsons["val"]) == {"segm": pytest.approx(1.0), "bbox": pytest.approx(1.0)}
    report = coco2yolo(jsons["train"], None, tmp_path / "yolo", splits=["train"])
    assert report.images == {"train": 10}
    lines = _assert_same_labels(
        coco128_seg / "labels" / "train2017", tmp_path / "yolo" / "labels" / "train", [p.stem for p in images]
    )
    assert lines == report.instances > 10


H, W = 60, 80


def _complex_coco(tmp_path: Path) -> Path:
    img = tmp_path / "imgs" / "x.png"
    img.parent.mkdir()
    cv2.imwrite(str(img), np.zeros((H, W, 3), np.uint8))
    donut = np.zeros((H, W), np.uint8)
    cv2.circle(donut, (40, 30), 20, 1, -1)
    cv2.circle(donut, (40, 30), 7, 0, -1)
    two = [
        np.array([[2, 2], [12, 2], [12, 10], [2, 10]], float),
        np.array([[60, 40], [75, 40], [70, 55]], float),
    ]
    crowd = np.zeros((H, W), np.uint8)
    crowd[50:58, 2:20] = 1
    rec = ImageRecord(
        img,
        W,
        H,
        [
            Instance(0, rle=mask_to_rle(donut)),
            Instance(1, polygons=two),
            Instance(1, rle=mask_to_rle(crowd), iscrowd=True),
        ],
    )
    return write_json_atomic(tmp_path / "ann.json", records_to_coco([rec], ["donut", "pair"], [5, 9]))


def test_holes_and_parts_become_one_ring_with_reported_iou(tmp_path):
    path = _complex_coco(tmp_path)
    report = coco2yolo(path, tmp_path / "imgs", tmp_path / "out", splits=["val"])
    assert report.joined == 2 and report.crowd_dropped == 1 and report.instances == 2
    assert report.min_iou == 1.0 and report.mean_iou == 1.0 and report.losses == []
    insts, findings = parse_yolo_labels(tmp_path / "out" / "labels" / "val" / "x.txt", W, H, 2)
    assert not findings and [i.cls for i in insts] == [0, 1]
    orig = json.loads(path.read_text())["annotations"]
    donut_back = polygons_to_rle(insts[0].polygons, H, W)
    assert mask_iou(donut_back, orig[0]["segmentation"]) > 0.999  # 6-decimal coordinates
    pair_back = polygons_to_rle(insts[1].polygons, H, W)
    pair = polygons_to_rle([np.array(p).reshape(-1, 2) for p in orig[1]["segmentation"]], H, W)
    assert mask_iou(pair_back, pair) > 0.999
    assert "val" in (tmp_path / "out" / "data.yaml").read_text()


def test_polygon_crossing_the_border_is_clipped_not_squashed(tmp_path):
    img = tmp_path / "y.png"
    cv2.imwrite(str(img), np.zeros((H, W, 3), np.uint8))
    # A triangle reaching far outside: clipping each vertex would cut pixels inside the image; clipping the
    # polygon to the image keeps them all.
    tri = np.array([[10, 10], [300, 30], [10, 50]], float)
    rec = ImageRecord(img, W, H, [Instance(0, polygons=[tri])])
    path = write_json_atomic(tmp_path / "a.json", records_to_coco([rec], ["thing"]))
    report = coco2yolo(path, tmp_path, tmp_path / "out")
    # pycocotools rounds vertices to 1/5 px, so moving a vertex onto the border may flip a pixel or two.
    assert len(report.ious) == 1 and report.ious[0] > 0.995 and report.losses == []
    squashed = mask_iou(polygons_to_rle([tri], H, W), polygons_to_rle([np.clip(tri, 0, [W, H])], H, W))
    assert squashed < 0.9  # what vertex clipping would have kept
    (inst,), _ = parse_yolo_labels(tmp_path / "out" / "labels" / "train" / "y.txt", W, H, 1)
    assert mask_iou(polygons_to_rle(inst.polygons, H, W), polygons_to_rle([tri], H, W)) > 0.995


def test_instances_below_the_threshold_are_named(tmp_path, monkeypatch):
    import instseg.data.convert as convert

    monkeypatch.setattr(convert, "IOU_REPORT_THRESHOLD", 1.5)  # every changed instance falls below it
    report = coco2yolo(_complex_coco(tmp_path), tmp_path / "imgs", tmp_path / "out", splits=["val"])
    assert [(x.split, x.image, x.image_id, x.annotation_id) for x in report.losses] == [
        ("val", "x.png", 1, 1),
        ("val", "x.png", 1, 2),
    ]
    assert "val x.png (image id 1, annotation id 2): IoU 1.0000" in report.summary()


@pytest.mark.parametrize(
    "path, split",
    [
        ("car/train/COCO_mul_train_annos.json", "train"),
        ("car/val/COCO_mul_val_annos.json", "val"),
        ("x/valid/_annotations.coco.json", "val"),
        ("x/instances_test2017.json", "test"),
        ("x/annotations.json", "train"),
        ("test_run0/annotations.json", "train"),  # only a folder named exactly like a split counts
    ],
)
def test_guess_split(path, split):
    assert guess_split(Path(path)) == split


def test_errors_are_clear(tmp_path):
    path = _complex_coco(tmp_path)
    other = json.loads(path.read_text())
    other["categories"] = [{"id": 5, "name": "donut"}]
    other["info"] = {}
    other["annotations"] = [a for a in other["annotations"] if a["category_id"] == 5]
    other_path = write_json_atomic(tmp_path / "other.json", other)
    with pytest.raises(ConversionError, match="categories .* differ"):
        coco2yolo([path, other_path], [tmp_path / "imgs"] * 2, tmp_path / "o1")
    with pytest.raises(ConversionError, match="one images folder per COCO JSON"):
        coco2yolo([path, other_path], [tmp_path / "imgs"], tmp_path / "o2")
    with pytest.raises(ConversionError, match="split name"):
        coco2yolo(path, tmp_path / "imgs", tmp_path / "o3", splits=["../x"])
    with pytest.raises(ConversionError, match="none of its 1 images was found under .*nowhere .*'x.png'"):
        coco2yolo(path, tmp_path / "nowhere", tmp_path / "o4")  # 100% unmatched is an error (issue 16)


@pytest.mark.parametrize("symlink", [False, True])
def test_copy_or_symlink(tmp_path, symlink):
    path = _complex_coco(tmp_path)
    coco2yolo(path, tmp_path / "imgs", tmp_path / "out", symlink=symlink)
    out = tmp_path / "out" / "images" / "train" / "x.png"
    assert out.is_file() and out.is_symlink() == symlink


def test_cli_car_damage(car_damage_coco, tmp_path, monkeypatch):
    monkeypatch.chdir(car_damage_coco.parent)
    args = [
        "convert",
        "coco2yolo",
        "--coco",
        "car-damage-coco/train/COCO_mul_train_annos.json",
        "--images",
        "car-damage-coco/train",
        "--coco",
        "car-damage-coco/val/COCO_mul_val_annos.json",
        "--images",
        "car-damage-coco/val",
        "--out",
        str(tmp_path / "out"),
        "--symlink",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "train: 59 images" in result.output and "val: 11 images" in result.output
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    cats = json.loads((car_damage_coco / "train" / "COCO_mul_train_annos.json").read_text())["categories"]
    assert list(data["names"].values()) == [c["name"] for c in sorted(cats, key=lambda c: c["id"])]
    labels = list((tmp_path / "out" / "labels" / "train").glob("*.txt"))
    assert len(labels) == 59
    assert sum(len(_numbers(p)) for p in labels) == 177


def test_cli_yolo2coco(tmp_path):
    data = _tiny_yolo(tmp_path / "ds")
    result = CliRunner().invoke(
        app, ["convert", "yolo2coco", "--data", str(data), "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert "train: " in result.output and "no label file" in result.output
    assert json.loads((tmp_path / "c" / "val.json").read_text())["images"][0]["id"] == 1


def test_yolo2coco_selected_splits(tmp_path):
    data = _tiny_yolo(tmp_path / "ds")
    assert list(yolo2coco(data, tmp_path / "c", splits=["val"], use_cache=False)) == ["val"]
    assert not (tmp_path / "c" / "train.json").exists()
    with pytest.raises(ConversionError, match=r"no split \['test'\]"):
        yolo2coco(data, tmp_path / "c", splits=["test"])


def test_json_size_that_does_not_match_the_image_is_reported(tmp_path):
    path = _complex_coco(tmp_path)
    coco = json.loads(path.read_text())
    coco["images"][0]["width"] = W + 8  # the annotations were drawn on some other image size
    write_json_atomic(path, coco)
    report = coco2yolo(path, tmp_path / "imgs", tmp_path / "out")
    (finding,) = [f for f in report.findings if f.code == "size-mismatch"]
    assert finding.file == path and f"the JSON says {W + 8}x{H}, x.png is {W}x{H}" in finding.message


def test_cli_coco2yolo_split_name_and_errors(tmp_path):
    path = _complex_coco(tmp_path)
    args = ["convert", "coco2yolo", "--coco", str(path), "--images", str(tmp_path / "imgs")]
    result = CliRunner().invoke(app, [*args, "--split", "val", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "val: 1 images" in result.output and "1 crowd regions dropped" in result.output
    assert (tmp_path / "o" / "labels" / "val" / "x.txt").is_file()
    result = CliRunner().invoke(app, [*args, "--split", "a", "--split", "b", "--out", str(tmp_path / "p")])
    assert result.exit_code == 1 and "one split name per COCO JSON" in str(result.exception)
