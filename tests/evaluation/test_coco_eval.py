"""evaluate(): faster-coco-eval equals pycocotools to 1e-4 on real ground truth, edge cases, clear errors."""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np
import pytest

from instseg.errors import DatasetError, InstsegError
from instseg.evaluation import evaluate
from instseg.evaluation.checks import load_ground_truth
from instseg.evaluation.coco_eval import run_pycocotools
from instseg.evaluation.metrics import SUMMARY_SPEC, summarize

from .conftest import PERTURBATIONS, encode, gt_mask, perturbed_results, with_crowd_and_empty_images


def assert_same_metrics(a, b, tol=1e-4):
    for kind in ("segm", "bbox"):
        ta, tb = getattr(a, kind), getattr(b, kind)
        assert (ta is None) == (tb is None)
        if ta is None:
            continue
        for name, *_ in SUMMARY_SPEC:
            va, vb = getattr(ta, name), getattr(tb, name)
            assert (math.isnan(va) and math.isnan(vb)) or abs(va - vb) <= tol, (kind, name, va, vb)
        assert ta.per_class.keys() == tb.per_class.keys()
        for cls in ta.per_class:
            va, vb = ta.per_class[cls], tb.per_class[cls]
            assert (math.isnan(va) and math.isnan(vb)) or abs(va - vb) <= tol, (kind, cls, va, vb)


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_faster_equals_pycocotools_on_car_damage(car_val_gt, kind):
    results = perturbed_results(car_val_gt, kind, seed=1)
    fast = evaluate(car_val_gt, copy.deepcopy(results), engine="faster")
    ref = evaluate(car_val_gt, copy.deepcopy(results), engine="pycocotools")
    assert_same_metrics(fast, ref)
    if kind == "exact":  # the ground truth's own masks: perfect segm, whatever the scores
        assert fast.segm.AP == pytest.approx(1.0) and fast.bbox.AP == pytest.approx(1.0)
    else:  # a perturbation that cannot score perfectly
        assert 0.0 < fast.segm.AP < 1.0


@pytest.mark.parametrize("kind", ["mixed", "miss_fp"])
def test_crowd_regions_and_images_without_gt(car_val_gt, kind):
    gt = with_crowd_and_empty_images(car_val_gt)
    results = perturbed_results(gt, kind, seed=2)
    empty_ids = {im["id"] for im in gt["images"][-2:]}
    assert any(r["image_id"] in empty_ids for r in results)  # false positives on images without GT
    fast = evaluate(gt, copy.deepcopy(results))
    ref = evaluate(gt, copy.deepcopy(results), engine="pycocotools")
    assert_same_metrics(fast, ref)
    plain = evaluate(car_val_gt, [r for r in results if r["image_id"] not in empty_ids])
    assert fast.segm.AP != pytest.approx(plain.segm.AP, abs=1e-6)  # crowd / extra images do count


def test_bigger_single_class_set(car_train_gt):
    results = perturbed_results(car_train_gt, "mixed", seed=3)
    assert_same_metrics(
        evaluate(car_train_gt, copy.deepcopy(results)),
        evaluate(car_train_gt, copy.deepcopy(results), engine="pycocotools"),
    )


@pytest.mark.parametrize("engine", ["faster", "pycocotools"])
def test_empty_predictions_score_zero_not_crash(car_val_gt, engine):
    m = evaluate(car_val_gt, [], engine=engine)
    for kind in (m.segm, m.bbox):
        assert [kind.AP, kind.AP50, kind.AR100] == [0.0, 0.0, 0.0]
        assert all(v == 0.0 for v in kind.per_class.values())
    assert m.num_predictions == 0


def test_class_without_gt_is_nan(car_val_gt):
    gt = copy.deepcopy(car_val_gt)
    gt["categories"].append({"id": 9, "name": "wheel", "supercategory": "part"})
    results = perturbed_results(gt, "exact")
    m = evaluate(gt, results)
    assert math.isnan(m.segm.per_class["wheel"]) and m.segm.per_class["door"] == pytest.approx(1.0)
    assert "wheel" in m.table() and m.to_dict(json_safe=True)["segm_per_class"]["wheel"] is None


def test_annotation_id_zero_is_renumbered(car_val_gt):
    # pycocotools reads annotation id 0 as "unmatched": without renumbering, exact predictions lose AP
    assert min(a["id"] for a in car_val_gt["annotations"]) == 0
    ground = load_ground_truth(car_val_gt)
    assert ground.notes and [a["id"] for a in ground.dataset["annotations"]][:3] == [1, 2, 3]
    assert car_val_gt["annotations"][0]["id"] == 0  # the input is not modified
    arrays = run_pycocotools(car_val_gt, perturbed_results(car_val_gt, "exact"), "segm")
    assert summarize(arrays)["AP"] < 0.999  # the quirk this repair avoids


def test_summarize_equals_cocoeval_stats(car_val_gt):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ground = load_ground_truth(car_val_gt)
    results = [{k: v for k, v in r.items() if k != "bbox"} for r in perturbed_results(car_val_gt, "mixed")]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(ground.dataset)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "segm")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    ours = summarize(run_pycocotools(ground.dataset, results, "segm"))
    expected = [math.nan if s == -1 else s for s in ev.stats]
    np.testing.assert_allclose(list(ours.values()), expected, atol=1e-12)


def test_segm_uses_mask_area_not_box_area(car_val_gt):
    # small false-positive masks (20x20 px) carrying a whole-image box, scored above every true detection:
    # by mask area they are "small" and ignored in APm/APl; by box area they would be "large" false positives
    results = perturbed_results(car_val_gt, "exact")
    for ann in {a["image_id"]: a for a in car_val_gt["annotations"]}.values():
        mask = np.zeros((1024, 1024), np.uint8)
        mask[:20, :20] = 1
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": ann["category_id"],
                "score": 2.0,
                "bbox": [0, 0, 1024, 1024],
                "segmentation": encode(mask),
            }
        )
    m = evaluate(car_val_gt, results, iou_types=("segm",))
    assert m.segm.APl == pytest.approx(1.0) and m.segm.APm == pytest.approx(1.0) and m.bbox is None
    assert m.segm.AP < 0.9  # in the "all" range they are false positives
    assert_same_metrics(m, evaluate(car_val_gt, results, iou_types=("segm",), engine="pycocotools"))


def test_results_file_and_polygon_results(car_val_gt, tmp_path):
    from instseg.evaluation import write_results_json

    results = perturbed_results(car_val_gt, "shift", seed=4)
    path = write_results_json(tmp_path / "res.json", results)
    from_file = evaluate(car_val_gt, path)
    assert_same_metrics(from_file, evaluate(car_val_gt, results))
    polys = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "score": 0.9,
            "segmentation": a["segmentation"],
        }
        for a in car_val_gt["annotations"]
    ]
    m = evaluate(car_val_gt, polys)  # polygons encoded at the image size; boxes derived from the masks
    assert m.segm.AP == pytest.approx(1.0) and m.bbox.AP50 == pytest.approx(1.0)


def _bad(results_edit):
    def make(gt):
        res = perturbed_results(gt, "exact")[:3]
        results_edit(res)
        return res

    return make


@pytest.mark.parametrize(
    "make, iou_types, message",
    [
        (_bad(lambda r: r[1].update(image_id=999)), ("segm", "bbox"), "result 1: image_id 999 is not in"),
        (_bad(lambda r: r[2].update(category_id=77)), ("segm", "bbox"), "result 2: category_id 77 is not in"),
        (_bad(lambda r: r[0].pop("score")), ("segm",), "result 0: missing or non-numeric 'score'"),
        (_bad(lambda r: r[0]["segmentation"].update(size=[10, 10])), ("segm",), "mask size [10, 10]"),
        (_bad(lambda r: r[1].pop("segmentation")), ("segm",), "evaluate bbox only"),
        (
            _bad(lambda r: r[0].update(segmentation={"size": [1024, 1024]})),
            ("segm",),
            "needs 'size' and 'counts'",
        ),
    ],
)
def test_bad_results_are_named(car_val_gt, make, iou_types, message):
    with pytest.raises(DatasetError) as e:
        evaluate(car_val_gt, make(car_val_gt), iou_types=iou_types)
    assert message in str(e.value)


def test_box_only_results_evaluate_bbox(car_val_gt):
    results = [
        {k: v for k, v in r.items() if k != "segmentation"} for r in perturbed_results(car_val_gt, "exact")
    ]
    assert evaluate(car_val_gt, results, iou_types=["bbox"]).bbox.AP == pytest.approx(1.0)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda g: g["annotations"][3].update(image_id=555),
            "annotations[3]: image_id 555 is not in 'images'",
        ),
        (lambda g: g["annotations"][0].update(category_id=42), "annotations[0]: category_id 42"),
        (lambda g: g.pop("categories"), "missing or invalid 'categories'"),
        (lambda g: g["images"].append(dict(g["images"][0])), "duplicate image id"),
        (lambda g: g["images"][0].pop("height"), "images[0] needs integer 'id', 'height' and 'width'"),
        (lambda g: g["annotations"][5].pop("segmentation"), "annotations[5] has no 'segmentation'"),
        (
            lambda g: g["annotations"][2].update(segmentation={"size": [8, 8], "counts": "x"}, area=None),
            "annotations[2]: unusable segmentation (RLE size [8, 8] != image size [1024, 1024]",
        ),
    ],
)
def test_bad_ground_truth_is_named(car_val_gt, edit, message):
    gt = copy.deepcopy(car_val_gt)
    edit(gt)
    with pytest.raises(DatasetError) as e:
        evaluate(gt, [])
    assert message in str(e.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"engine": "detectron"}, "valid: faster, pycocotools"),
        ({"iou_types": ("keypoints",)}, "valid: segm, bbox"),
    ],
)
def test_bad_options(car_val_gt, kwargs, message):
    with pytest.raises(InstsegError, match=message):
        evaluate(car_val_gt, [], **kwargs)


def test_missing_area_is_computed_from_mask(car_val_gt):
    gt = copy.deepcopy(car_val_gt)
    for a in gt["annotations"]:
        a.pop("area")
    ground = load_ground_truth(gt)
    got = [a["area"] for a in ground.dataset["annotations"]]
    # (this file's own "area" values are not its mask areas: the evaluator keeps what a file states)
    expected = [float(gt_mask(a, 1024, 1024).sum()) for a in car_val_gt["annotations"]]
    assert got == expected and got[1] == 461890.0
    assert evaluate(gt, perturbed_results(car_val_gt, "exact")).segm.AP == pytest.approx(1.0)


def test_yolo2coco_ground_truth_scores_one_against_itself(coco128_seg, tmp_path):
    """The COCO JSON that `instseg convert yolo2coco` writes (coco128-seg val: background images, a
    grayscale image, 80 names of which some have no instance) scores AP 1.0 with its own polygons."""
    from instseg.data.convert import yolo2coco

    gt_path = yolo2coco(coco128_seg / "data.yaml", tmp_path)["val"]
    ground = load_ground_truth(gt_path)
    gt, gt_names = ground.dataset, ground.names
    results = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "score": 1.0,
            "segmentation": a["segmentation"],
            "bbox": a["bbox"],
        }
        for a in gt["annotations"]
    ]
    for engine in ("faster", "pycocotools"):
        m = evaluate(gt_path, copy.deepcopy(results), engine=engine)
        assert m.segm.AP == pytest.approx(1.0) and m.bbox.AP == pytest.approx(1.0)
        absent = [n for n, v in m.segm.per_class.items() if math.isnan(v)]
        present = {gt_names[c] for c in {a["category_id"] for a in gt["annotations"]}}
        assert len(absent) == 80 - len(present) > 0 and not present & set(absent)  # no instance: NaN, not 0


@pytest.mark.parametrize("engine", ["faster", "pycocotools"])
@pytest.mark.parametrize("n_results", [0, 1])
def test_no_ground_truth_at_all_is_nan(engine, n_results):
    gt = {
        "images": [{"id": 1, "height": 20, "width": 30}],
        "annotations": [],
        "categories": [{"id": 1, "name": "a"}],
    }
    res = [{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1, 1, 5, 5]}][:n_results]
    m = evaluate(gt, res, iou_types=["bbox"], engine=engine)
    assert math.isnan(m.bbox.AP) and math.isnan(m.bbox.AR100) and math.isnan(m.bbox.per_class["a"])
    assert "-" in m.table().splitlines()[3].split()
