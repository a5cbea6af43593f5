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

    weights = resample_weights(len(gt["images"]), samples=6, seed=3, method="multinomial")
    fast = accumulate(ev, weights, chunk=4)  # chunking must not change anything
    for b in range(len(weights)):
        slow = reference_map(gt, results, weights[b])
        assert fast["mAP"][b] == pytest.approx(slow[0], abs=1e-9)
        assert fast["mAP50"][b] == pytest.approx(slow[1], abs=1e-9)
    assert len(set(np.round(fast["mAP"], 6))) > 1  # the resamples differ


def test_interval_and_paired_probability():
    weights = resample_weights(5, samples=200, seed=0, method="multinomial")
    assert weights.sum(axis=1).tolist() == [5.0] * 200
    assert np.array_equal(weights, resample_weights(5, samples=200, seed=0, method="multinomial"))
    bayes = resample_weights(5, samples=4000, seed=0)
    assert np.allclose(bayes.sum(axis=1), 5.0) and (bayes > 0).all()
    assert np.array_equal(bayes, resample_weights(5, samples=4000, seed=0))
    assert bayes.mean() == pytest.approx(1.0) and bayes.var() == pytest.approx(4 / 6, rel=0.05)  # (N-1)/(N+1)
    v = np.linspace(0, 1, 1001)
    lo, hi = interval(v)
    assert lo == pytest.approx(0.025) and hi == pytest.approx(0.975)
    a, b = np.array([0.5, 0.6, 0.7, 0.4]), np.array([0.4, 0.6, 0.5, 0.5])
    assert prob_greater(a, b) == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    gt, results = make_case(seed=1)
    ev = per_image_eval(gt, results, "segm")
    same = accumulate(ev, resample_weights(len(gt["images"]), 50, 1))["mAP"]
    assert prob_greater(same, same) == 0.5


def test_real_weights_mean_duplicated_images():
    """A weight is a multiplicity: scaling all weights changes nothing, and weights in quarters equal COCOeval
    on the images duplicated 4x their weight (so Dirichlet weights extend the integer case)."""
    gt, results = make_case(seed=2, n_images=6)
    ev = per_image_eval(gt, results, "segm")
    w = np.round(resample_weights(6, samples=3, seed=5) * 4) / 4  # quarters, exact in binary
    w[w == 0] = 0.25
    a, b = accumulate(ev, w), accumulate(ev, 4 * w)
    assert np.allclose(a["mAP"], b["mAP"], atol=1e-12) and np.allclose(a["mAP50"], b["mAP50"], atol=1e-12)
    slow = reference_map(gt, results, 4 * w[0])
    assert a["mAP"][0] == pytest.approx(slow[0], abs=1e-9) and a["mAP50"][0] == pytest.approx(slow[1], abs=1e-9)


def _with_rare_category(gt: dict, results: list[dict]) -> tuple[dict, list[dict]]:
    """A 4th category with one instance in image 1 (found, score 0.9) and false positives in images 2-4."""
    from pycocotools import mask as mask_api

    def rle(x, y, w, h):
        r = mask_api.merge(mask_api.frPyObjects(_rect(x, y, w, h), 80, 100))
        return {**r, "counts": r["counts"].decode()}

    anns = gt["annotations"] + [{"id": len(gt["annotations"]) + 1, "image_id": 1, "category_id": 4, "iscrowd": 0,
                                 "segmentation": _rect(10, 10, 30, 30), "bbox": [10, 10, 30, 30], "area": 900.0}]
    extra = [{"image_id": 1, "category_id": 4, "segmentation": rle(11, 10, 30, 29), "score": 0.9}]
    extra += [{"image_id": i, "category_id": 4, "segmentation": rle(50, 40, 20, 20), "score": s}
              for i, s in ((2, 0.95), (3, 0.5), (4, 0.97))]
    return ({**gt, "annotations": anns, "categories": gt["categories"] + [{"id": 4, "name": "c4"}]},
            results + extra)


def test_a_category_in_one_image_stays_in_every_resample():
    """The failure mode of multinomial counts: a category in one image drops out of ~37% of the resamples
    and is inflated in the others; with Dirichlet weights its AP is defined in every one."""
    gt, results = _with_rare_category(*make_case(seed=0, n_images=9))
    ev = per_image_eval(gt, results, "segm")
    assert (ev.cats[3].n_gt > 0).sum() == 1
    full = accumulate(ev, np.ones((1, 9)))
    assert full["per_class"][0, 3] == pytest.approx(0.9 / 3)  # 2 false positives above it; IoU 0.905
    counts = accumulate(ev, resample_weights(9, 400, 0, method="multinomial"))["per_class"][:, 3]
    bayes = accumulate(ev, resample_weights(9, 400, 0))
    assert 0.25 < np.isnan(counts).mean() < 0.5
    assert np.nanmean(counts) > full["per_class"][0, 3] + 0.05  # drawn at least once: inflated
    assert not np.isnan(bayes["per_class"]).any()
    lo, hi = interval(bayes["mAP"])
    assert lo <= full["mAP"][0] <= hi


def test_precision_curves_equal_cocoeval():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, results = make_case(seed=4)
    ev = per_image_eval(gt, results, "segm")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ref = COCOeval(coco_gt, coco_gt.loadRes(results), "segm")
        ref.evaluate()
        ref.accumulate()
    from instseg.compare.bootstrap import precision_curves

    for k, cat in enumerate(ev.cats):
        want = ref.eval["precision"][:, :, k, 0, 2]  # [T, R], area 'all', 100 detections
        got = precision_curves(cat)
        if (want < 0).all():
            assert np.isnan(got).all()
        else:
            assert np.allclose(got, want, atol=1e-12)
