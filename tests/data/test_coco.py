"""COCO JSON: the writer's ids, boxes and areas, self-evaluation to AP 1.0, and the reader's findings."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from instseg.data.coco import BOX_ONLY_KEY, load_coco, records_to_coco, write_json_atomic
from instseg.data.masks import mask_to_rle, rle_area, rle_to_mask
from instseg.data.types import ImageRecord, Instance
from instseg.errors import DatasetError

H, W = 40, 60


def _square(x1, y1, x2, y2):
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)


def _ring_mask() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (30, 20), 12, 1, -1)
    cv2.circle(mask, (30, 20), 4, 0, -1)
    return mask


def _records(tmp_path: Path) -> list[ImageRecord]:
    paths = []
    for k in range(3):
        p = tmp_path / "imgs" / f"im{k}.png"
        p.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(p), np.zeros((H, W, 3), np.uint8))
        paths.append(p)
    return [
        ImageRecord(
            paths[0],
            W,
            H,
            [
                Instance(0, polygons=[_square(2, 3, 12, 9)]),
                Instance(1, polygons=[_square(20, 2, 30, 8), _square(40, 20, 50, 35)]),  # two parts
                Instance(1, polygons=[_square(-5, 30, 8, 45)]),  # crosses the image border
            ],
        ),
        ImageRecord(
            paths[1],
            W,
            H,
            [
                Instance(2, rle=mask_to_rle(_ring_mask())),  # a hole: only RLE can say it
                Instance(0, bbox=np.array([1.0, 1.0, 9.0, 7.0])),  # box-only (YOLO 5-value line)
                Instance(
                    0, rle=mask_to_rle(np.pad(np.ones((5, 5), np.uint8), ((30, 5), (50, 5)))), iscrowd=True
                ),
            ],
        ),
        ImageRecord(paths[2], W, H, []),  # background image
    ]


NAMES = ["cat", "dog", "donut"]


@pytest.fixture
def written(tmp_path):
    records = _records(tmp_path)
    coco = records_to_coco(records, NAMES, image_root=tmp_path / "imgs")
    path = write_json_atomic(tmp_path / "ann.json", coco)
    return records, coco, path


def test_writer_ids_boxes_and_areas(written):
    _, coco, _ = written
    assert [im["id"] for im in coco["images"]] == [1, 2, 3]
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3, 4, 5, 6]
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert coco["info"]["instseg"]["names"] == NAMES
    anns = coco["annotations"]
    assert anns[0]["bbox"] == [2.0, 3.0, 10.0, 6.0] and anns[0]["area"] == 60
    assert len(anns[1]["segmentation"]) == 2 and anns[1]["area"] == 60 + 150
    assert anns[2]["bbox"] == [0.0, 30.0, 8.0, 10.0] and anns[2]["area"] == 80  # clipped to the image
    ring = _ring_mask()
    assert anns[3]["area"] == int(ring.sum()) < anns[3]["bbox"][2] * anns[3]["bbox"][3]  # mask area, not box
    assert isinstance(anns[3]["segmentation"]["counts"], str)
    assert anns[4][BOX_ONLY_KEY] and anns[4]["area"] == 48
    assert anns[5]["iscrowd"] == 1 and anns[5]["area"] == 25
    assert coco["images"][0]["file_name"] == "im0.png"


def test_self_evaluation_gives_ap_one(written):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _, coco, path = written
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))
        preds = [
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "score": 1.0,
                "segmentation": gt.annToRLE(a),
                "bbox": a["bbox"],
            }
            for a in coco["annotations"]
            if not a["iscrowd"]
        ]
        for a in preds:
            a["segmentation"]["counts"] = (
                a["segmentation"]["counts"].decode()
                if isinstance(a["segmentation"]["counts"], bytes)
                else a["segmentation"]["counts"]
            )
        dt = gt.loadRes(copy.deepcopy(preds))
        stats = {}
        for iou_type in ("segm", "bbox"):
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            stats[iou_type] = ev.stats
    for iou_type in ("segm", "bbox"):
        assert stats[iou_type][0] == pytest.approx(1.0), iou_type  # AP50:95
        assert stats[iou_type][1] == pytest.approx(1.0), iou_type  # AP50


def test_read_back_is_lossless(written):
    records, _, path = written
    ds = load_coco(path)
    assert ds.names == NAMES and ds.category_ids == [1, 2, 3] and not ds.findings
    assert ds.images_dir == records[0].path.parent.resolve()
    assert [r.path.name for r in ds.records] == ["im0.png", "im1.png", "im2.png"]
    assert ds.annotation_ids == [[1, 2, 3], [4, 5, 6], []]
    for orig, back in zip(records, ds.records):
        assert len(orig.instances) == len(back.instances)
        for a, b in zip(orig.instances, back.instances):
            assert (a.cls, a.iscrowd, len(a.polygons)) == (b.cls, b.iscrowd, len(b.polygons))
            for pa, pb in zip(a.polygons, b.polygons):
                np.testing.assert_allclose(pa, pb)
            if a.rle is not None:
                np.testing.assert_array_equal(rle_to_mask(a.rle), rle_to_mask(b.rle))
            if not a.has_mask:
                assert not b.has_mask
                np.testing.assert_allclose(b.bbox, a.bbox)


def test_custom_category_ids_keep_the_names_order(tmp_path):
    records = _records(tmp_path)
    coco = records_to_coco(records, NAMES, category_ids=[30, 7, 12])
    ds = load_coco(write_json_atomic(tmp_path / "a.json", coco), images_dir=tmp_path / "imgs")
    assert ds.names == NAMES and ds.category_ids == [30, 7, 12]
    del coco["info"]  # a foreign file: classes follow category-id order
    ds = load_coco(write_json_atomic(tmp_path / "b.json", coco), images_dir=tmp_path / "imgs")
    assert ds.names == ["dog", "donut", "cat"] and ds.category_ids == [7, 12, 30]
    assert [i.cls for i in ds.records[0].instances] == [2, 0, 0]


def _base() -> dict:
    return {
        "images": [{"id": 5, "file_name": "a.jpg", "width": 20, "height": 10}],
        "annotations": [
            {
                "id": 9,
                "image_id": 5,
                "category_id": 3,
                "bbox": [1, 1, 4, 4],
                "iscrowd": 0,
                "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]],
            }
        ],
        "categories": [{"id": 3, "name": "scratch"}],
    }


@pytest.mark.parametrize(
    "change, code, message",
    [
        ({"image_id": 77}, "unknown-image", "annotation id 9: image_id 77 is not in 'images'"),
        ({"image_id": [5]}, "unknown-image", "annotation id 9: image_id [5] is not in 'images'"),
        ({"category_id": 4}, "unknown-category", "annotation id 9: category_id 4 is not in 'categories'"),
        ({"segmentation": [[1, 1, 5, 1]]}, "bad-polygon", "annotation id 9: polygon 0 has 4 coordinates"),
        ({"segmentation": {"size": [11, 20], "counts": [220]}}, "rle-size-mismatch", "RLE size [11, 20]"),
        ({"segmentation": {"size": [10, 20], "counts": [5]}}, "bad-rle", "counts sum to 5"),
        ({"segmentation": "x"}, "bad-segmentation", "must be a list of polygons or an RLE dict"),
    ],
)
def test_bad_annotations_are_reported_and_skipped(tmp_path, change, code, message):
    data = _base()
    data["annotations"][0].update(change)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    ds = load_coco(path)
    codes = [f.code for f in ds.findings]
    assert code in codes
    finding = ds.findings[codes.index(code)]
    assert message in finding.message and finding.file == path
    if code == "bad-polygon":  # the polygon is dropped, the box keeps the instance
        assert len(ds.records[0].instances) == 1 and not ds.records[0].instances[0].has_mask
    else:
        assert ds.records[0].instances == []


def test_uncompressed_crowd_rle_is_read(tmp_path):
    data = _base()
    data["annotations"][0].update(iscrowd=1, segmentation={"size": [10, 20], "counts": [10, 5, 185]})
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    inst = load_coco(path).records[0].instances[0]
    assert inst.iscrowd and rle_area(inst.rle) == 5 and isinstance(inst.rle["counts"], str)


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"images": [', r"ann.json:1:\d+: invalid JSON"),
        ('{"images": [], "annotations": []}', "no 'categories' list"),
        ('{"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}]}', r"images\[0\] needs"),
        (
            '{"images": [], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}',
            "category id 1 appears twice",
        ),
    ],
)
def test_unusable_files_raise_with_the_file_name(tmp_path, text, match):
    path = tmp_path / "ann.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match):
        load_coco(path)


def test_missing_image_file_is_a_warning(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_base()))
    ds = load_coco(path)
    assert [f.code for f in ds.findings] == ["image-not-found"]
    assert len(ds.records[0].instances) == 1


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    out = write_json_atomic(tmp_path / "sub" / "x.json", {"a": [1, 2]})
    assert json.loads(out.read_text()) == {"a": [1, 2]}
    assert [p.name for p in out.parent.iterdir()] == ["x.json"]
