"""The re-accumulating bootstrap against a slow reference: full pycocotools COCOeval on each resampled image
set (images duplicated under new ids), on a small generated case with crowd regions, missed objects,
false positives and a class without predictions."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from instseg.compare.bootstrap import (accumulate, interval, per_image_eval, prob_greater, resample_weights)


def _rect(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def make_case(seed: int = 0, n_images: int = 9):
    """(gt, results) with 3 categories (the third never predicted), crowd regions and jittered detections."""
    from pycocotools import mask as mask_api

    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for i in range(1, n_images + 1):
        H, W = 80, 100
        images.append({"id": i, "file_name": f"{i}.jpg", "width": W, "height": H})
        for _ in range(rng.integers(1, 5)):
            cat = int(rng.integers(1, 4))
            w, h = rng.uniform(8, 40), rng.uniform(8, 35)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            crowd = int(rng.random() < 0.1)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "segmentation": _rect(x, y, w, h),
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": crowd})
            if cat == 3 or rng.random() < 0.2:
                continue  # missed
            for _ in range(rng.integers(1, 3)):
                jx, jy = x + rng.normal(0, 3), y + rng.normal(0, 3)
                jw, jh = max(2.0, w + rng.normal(0, 4)), max(2.0, h + rng.normal(0, 4))
                results.append((i, cat, [jx, jy, jw, jh], float(rng.random())))
        for _ in range(rng.integers(0, 3)):  # false positives
            results.append((i, int(rng.integers(1, 3)), [rng.uniform(0, 60), rng.uniform(0, 40), 15.0, 12.0],
                            float(rng.random() * 0.5)))
    out = []
    for image_id, cat, (x, y, w, h), score in results:
        rle = mask_api.frPyObjects(_rect(x, y, w, h), 80, 100)
        rle = mask_api.merge(rle)
        rle["counts"] = rle["counts"].decode()
        out.append({"image_id": image_id, "category_id": cat, "segmentation": rle, "score": score})
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]
    return {"images": images, "annotations": anns, "categories": cats}, out


def reference_map(gt: dict, results: list[dict], weights: np.ndarray) -> tuple[float, float]:
    """(mAP, mAP50) by pycocotools on the resampled image set: image i taken weights[i] times, new ids."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, res = [], [], []
    for n, img in enumerate(gt["images"]):
        for _ in range(int(weights[n])):
            new = len(images) + 1
            images.append({**img, "id": new})
            for a in gt["annotations"]:
                if a["image_id"] == img["id"]:
                    anns.append({**a, "id": len(anns) + 1, "image_id": new})
            res += [{**r, "image_id": new} for r in results if r["image_id"] == img["id"]]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": anns, "categories": gt["categories"]}
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(res), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def test_full_sample_equals_cocoeval_and_resamples_equal_the_reference():
    gt, results = make_case()
    ev = per_image_eval(gt, results, "segm")
    ones = np.ones((1, len(gt["images"])))
    full = accumulate(ev, ones)
    ref = reference_map(gt, results, ones[0])
    assert full["mAP"][0] == pytest.approx(ref[0], abs=1e-9)
    assert full["mAP50"][0] == pytest.approx(ref[1], abs=1e-9)
    assert 0.05 < ref[0] < 0.95  # a case where the numbers mean something

    weights = resample_weights(len(gt["images"]), samples=6, seed=3)
    fast = accumulate(ev, weights, chunk=4)  # chunking must not change anything
    for b in range(len(weights)):
        slow = reference_map(gt, results, weights[b])
        assert fast["mAP"][b] == pytest.approx(slow[0], abs=1e-9)
        assert fast["mAP50"][b] == pytest.approx(slow[1], abs=1e-9)
    assert len(set(np.round(fast["mAP"], 6))) > 1  # the resamples differ


def test_interval_and_paired_probability():
    weights = resample_weights(5, samples=200, seed=0)
    assert weights.sum(axis=1).tolist() == [5.0] * 200
    assert np.array_equal(weights, resample_weights(5, samples=200, seed=0))
    v = np.linspace(0, 1, 1001)
    lo, hi = interval(v)
    assert lo == pytest.approx(0.025) and hi == pytest.approx(0.975)
    a, b = np.array([0.5, 0.6, 0.7, 0.4]), np.array([0.4, 0.6, 0.5, 0.5])
    assert prob_greater(a, b) == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    gt, results = make_case(seed=1)
    ev = per_image_eval(gt, results, "segm")
    same = accumulate(ev, resample_weights(len(gt["images"]), 50, 1))["mAP"]
    assert prob_greater(same, same) == 0.5
