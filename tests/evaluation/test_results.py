"""predictions_to_coco_results, write/load of results JSON, and ImagePrediction input to evaluate()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from instseg.errors import DatasetError
from instseg.evaluation import evaluate, load_results, predictions_to_coco_results, write_results_json
from instseg.structures import ImagePrediction

from .conftest import encode, gt_mask


def _rect_mask(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _pred(image_id=7, boxes=True, masks=True, labels=(0, 1), scores=(0.9, 0.4)):
    m = [_rect_mask(20, 30, 3, 2, 9, 6), _rect_mask(20, 30, 10, 10, 30, 20)]
    return ImagePrediction(
        path=Path("imgs/a.jpg"),
        height=20,
        width=30,
        image_id=image_id,
        boxes=np.array([[3, 2, 9, 6], [10.123456, 10, 30, 20]], np.float32)
        if boxes
        else np.zeros((0, 4), np.float32),
        scores=np.array(scores, np.float32),
        labels=np.array(labels, np.int64),
        masks=[encode(x) for x in m] if masks else [],
    )


@pytest.mark.parametrize(
    "category_ids, expected",
    [(None, [1, 2]), ([3, 7], [3, 7]), ((10, 20, 30), [10, 20])],
)
def test_category_mapping(category_ids, expected):
    res = predictions_to_coco_results([_pred()], category_ids)
    assert [r["category_id"] for r in res] == expected
    assert [r["image_id"] for r in res] == [7, 7]


def test_boxes_xywh_scores_and_str_counts():
    res = predictions_to_coco_results([_pred()], [1, 2])
    assert res[0]["bbox"] == [3.0, 2.0, 6.0, 4.0]
    assert res[1]["bbox"] == [10.12, 10.0, 19.88, 10.0]  # rounded to 1/100 pixel
    assert res[0]["score"] == pytest.approx(0.9, abs=1e-6) and isinstance(res[0]["score"], float)
    assert isinstance(res[0]["segmentation"]["counts"], str) and res[0]["segmentation"]["size"] == [20, 30]
    json.dumps(res)  # plain JSON types only


def test_boxes_derived_from_masks():
    res = predictions_to_coco_results([_pred(boxes=False)], [1, 2])
    assert [r["bbox"] for r in res] == [[3.0, 2.0, 6.0, 4.0], [10.0, 10.0, 20.0, 10.0]]


def test_box_only_prediction_has_no_segmentation():
    res = predictions_to_coco_results([_pred(masks=False)], [1, 2])
    assert "segmentation" not in res[0] and res[0]["bbox"] == [3.0, 2.0, 6.0, 4.0]


def test_empty_prediction_writes_nothing():
    empty = ImagePrediction(path=None, height=5, width=5, image_id=None)
    assert predictions_to_coco_results([empty], [1]) == []


@pytest.mark.parametrize(
    "pred, category_ids, message",
    [
        (_pred(image_id=None), [1, 2], "image_id is None"),
        (_pred(labels=(0, 2)), [1, 2], "class label 2 has no category id"),
        (_pred(labels=(0, -1)), [1, 2], "negative class label -1"),
        (_pred(boxes=False, masks=False), [1, 2], "neither boxes nor masks"),
        (_pred(scores=(0.5,)), [1, 2], "1 scores but 2 labels"),
    ],
)
def test_bad_predictions_are_named(pred, category_ids, message):
    with pytest.raises(DatasetError, match=message):
        predictions_to_coco_results([pred], category_ids)


def test_mask_of_wrong_size_is_rejected():
    pred = _pred()
    pred.masks[1] = encode(np.zeros((10, 30), np.uint8))
    with pytest.raises(DatasetError, match=r"mask size \[10, 30\] != image size \[20, 30\]"):
        predictions_to_coco_results([pred], [1, 2])


def test_write_and_load_roundtrip(tmp_path):
    res = predictions_to_coco_results([_pred()], [1, 2])
    path = write_results_json(tmp_path / "sub" / "val.json", res)
    assert path.exists() and load_results(path) == res
    assert [p.name for p in path.parent.iterdir()] == ["val.json"]  # no temporary file left behind


@pytest.mark.parametrize(
    "text, message",
    [
        ('[{"image_id": 1,\n "score": }]', "res.json:2:11: invalid JSON"),
        ('{"images": []}', "a COCO results file is a JSON list"),
    ],
)
def test_load_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "res.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_results(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="results file not found"):
        load_results(tmp_path / "nope.json")


def test_image_predictions_matched_by_file_name(car_val_gt):
    """ImagePrediction input (image ids from file names, labels through the GT's sorted category ids)
    scores exactly like the equivalent result dicts."""
    by_image: dict[int, list[dict]] = {}
    for a in car_val_gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    preds, dicts = [], []
    rng = np.random.default_rng(0)
    for img in car_val_gt["images"]:
        anns = by_image.get(img["id"], [])
        h, w = img["height"], img["width"]
        masks = [encode(np.roll(gt_mask(a, h, w), 4, axis=1)) for a in anns]
        scores = rng.random(len(anns)).astype(np.float32)
        labels = np.array([a["category_id"] - 1 for a in anns], np.int64)  # ids 1..5 -> labels 0..4
        preds.append(
            ImagePrediction(
                path=Path("/data/val") / img["file_name"],
                height=h,
                width=w,
                scores=scores,
                labels=labels,
                masks=masks,
            )
        )
        dicts += [
            {
                "image_id": img["id"],
                "category_id": int(lab) + 1,
                "score": round(float(s), 6),
                "segmentation": m,
            }
            for lab, s, m in zip(labels, scores, masks, strict=True)
        ]
    a = evaluate(car_val_gt, preds)
    b = evaluate(car_val_gt, dicts)
    assert a.segm.AP == pytest.approx(b.segm.AP, abs=1e-12) and a.bbox.AP == pytest.approx(
        b.bbox.AP, abs=1e-12
    )
    assert 0.2 < a.segm.AP < 1.0


def test_image_prediction_with_unknown_file_name(car_val_gt):
    pred = ImagePrediction(path=Path("elsewhere/zzz.jpg"), height=1024, width=1024)
    with pytest.raises(DatasetError, match="zzz.jpg: no image_id and no image of that file name"):
        evaluate(car_val_gt, [pred])


@pytest.mark.parametrize(
    "recorded, expected",
    [(None, [1, 2, 3]), ([3, 1, 2], [3, 1, 2]), ([9, 1, 2], [1, 2, 3])],  # a stale record is not used
)
def test_default_class_order_follows_converter_record(recorded, expected):
    from instseg.evaluation.checks import load_ground_truth
    from instseg.evaluation.coco_eval import _as_results

    gt = {
        "images": [{"id": 1, "height": 20, "width": 30, "file_name": "a.jpg"}],
        "annotations": [],
        "categories": [{"id": i, "name": f"c{i}"} for i in (2, 3, 1)],
    }
    if recorded is not None:
        gt["info"] = {"instseg": {"category_ids": recorded}}
    ground = load_ground_truth(gt)
    assert ground.class_ids == expected
    results, _ = _as_results([_pred(image_id=None, labels=(0, 2))], ground, None)
    assert [r["category_id"] for r in results] == [expected[0], expected[2]]
    assert [r["image_id"] for r in results] == [1, 1]  # matched by the file name a.jpg
