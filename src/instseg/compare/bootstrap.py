"""Bootstrap confidence intervals of COCO mAP over val images, without re-running COCOeval per resample.

COCO's AP is a function of per-image match results only: which detections (with their scores) matched a
ground-truth instance at each IoU threshold, which were ignored (matched to a crowd region), and how many
non-ignored ground-truth instances each image holds. :func:`per_image_eval` computes these once, under
COCO's own rules (pycocotools' ``evaluateImg`` with area range 'all' and ``maxDets`` 100). A resample of the
images is then a vector of per-image weights ``w``; :func:`accumulate` rebuilds COCO's precision at the 101
recall points from weighted cumulative sums (an image of weight 2 counts as if it were there twice: its
detections and its ground truth), for a whole batch of resamples at once with numpy. With ``w`` all ones it
gives COCOeval's own AP; with integer ``w`` it equals COCOeval on the duplicated images (tested).

**Which resamples: Bayesian bootstrap weights** (Rubin 1981), ``w ~ N * Dirichlet(1, ..., 1)``, not
multinomial counts. Every image keeps a positive weight (mean 1, variance (N-1)/(N+1), a multinomial count's
(N-1)/N), so every category of the val set has ground truth in every resample and mAP is always the mean
over the same categories, the full set's. Multinomial counts break that where a category lives in one or two
images, which real val sets have (coco128-seg: 22 of its 71 categories): those images are left out of about
37 % of the resamples ((1 - 1/N)^N), the category drops out of the mean, and in the resamples that keep it
its images are drawn 1.58 times on average against 1 for the rest, so its AP rises (more true positives
against the same false positives from other images). Both push the resampled mAP up. On coco128-seg with
the benchmark's predictions (scripts/bench/bench_compare.py): full-set mAP 0.1682, multinomial resamples
average 0.193 and their 95 % percentile interval [0.169, 0.221] misses the estimate; keeping an absent
category at its full-set AP (the mean over the full set's categories, the usual patch) still gives 0.192,
because the inflation of the categories that stay remains; the bias-corrected (BC) percentile interval fails
too, as only 2 % of the resamples fall below the estimate. Dirichlet weights: resamples average 0.180,
interval [0.161, 0.199], which holds the estimate. Where every category is common, the two agree: fire-seg
(1 class, 50 images): [0.099, 0.193] vs [0.103, 0.194] around 0.136; a simulation with 5 categories
(val sets of 128 drawn from 20,000 images): interval widths 0.055 vs 0.057, the same coverage.

The interval is the percentile one over the resamples (:func:`interval`). It describes how much the mAP of a
val set of this size moves when its images are drawn again; it does not correct the small-sample bias of
COCO AP itself (the precision envelope makes AP of categories with few instances optimistic), which no
interval around the full-set estimate can.

Only COCO's tie order differs from a literal duplicate-the-images reference (detections of equal score in
different images); with real-valued scores that does not happen.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass

import numpy as np

IOU_THRS = np.linspace(0.5, 0.95, 10)
REC_THRS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100


@dataclass
class CategoryEval:
    """Every detection of one category over all images, sorted by score (descending, stable)."""

    image: np.ndarray  # [D] index of the detection's image (0..N-1, the ground truth's image order)
    tp: np.ndarray  # [T, D] bool: matched a non-ignored ground truth at IoU threshold t
    fp: np.ndarray  # [T, D] bool: unmatched and not ignored
    n_gt: np.ndarray  # [N] non-ignored ground-truth instances of this category per image


@dataclass
class PerImageEval:
    image_ids: list[int]  # the ground truth's image ids, axis N of every weight vector
    cat_ids: list[int]
    cats: list[CategoryEval]


def _coco_pair(gt: dict, results: list[dict]):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        coco_gt.createIndex()
        coco_dt = COCO()
        coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
        coco_dt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes([dict(r) for r in results])
    return coco_gt, coco_dt


def per_image_eval(gt: dict, results: list[dict], iou_type: str = "segm") -> PerImageEval:
    """Per image and category, COCO's matches at every IoU threshold (area 'all', 100 detections).

    ``gt``: a COCO ground-truth dict; ``results``: checked COCO results (for segm without ``bbox`` so that
    areas come from the masks, as instseg's evaluator does)."""
    from pycocotools.cocoeval import COCOeval

    coco_gt, coco_dt = _coco_pair(gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.params.maxDets = [MAX_DETS]
        ev.evaluate()
    p = ev.params
    image_ids = list(p.imgIds)
    index = {i: n for n, i in enumerate(image_ids)}
    n_img, n_thr = len(image_ids), len(p.iouThrs)
    assert np.allclose(p.iouThrs, IOU_THRS)
    cats = []
    for k, cat in enumerate(p.catIds):
        entries = [e for e in ev.evalImgs[k * n_img:(k + 1) * n_img] if e is not None]
        n_gt = np.zeros(n_img, dtype=np.int64)
        imgs, scores, matched, ignored = [], [], [], []
        for e in entries:
            i = index[e["image_id"]]
            n_gt[i] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
            d = len(e["dtScores"])
            if d:
                imgs.append(np.full(d, i))
                scores.append(np.asarray(e["dtScores"], dtype=np.float64))
                matched.append(np.asarray(e["dtMatches"]).reshape(n_thr, d) > 0)
                ignored.append(np.asarray(e["dtIgnore"]).reshape(n_thr, d).astype(bool))
        if scores:
            s = np.concatenate(scores)
            order = np.argsort(-s, kind="mergesort")  # COCO's accumulate order
            m = np.concatenate(matched, axis=1)[:, order]
            ig = np.concatenate(ignored, axis=1)[:, order]
            image = np.concatenate(imgs)[order]
        else:
            m = ig = np.zeros((n_thr, 0), dtype=bool)
            image = np.zeros(0, dtype=np.int64)
        tp, fp = m & ~ig, ~m & ~ig
        hits = np.flatnonzero(tp.any(axis=0))
        keep = int(hits[-1]) + 1 if hits.size else min(1, image.size)
        # detections after the last true positive cannot change the interpolated precision (recall stops
        # growing there and the envelope only looks right), so they are dropped: the same AP, less work
        cats.append(CategoryEval(image=image[:keep], tp=tp[:, :keep], fp=fp[:, :keep], n_gt=n_gt))
    return PerImageEval(image_ids=image_ids, cat_ids=list(p.catIds), cats=cats)


def _precision(cat: CategoryEval, weights: np.ndarray) -> np.ndarray:
    """Interpolated precision [B, T, R] of one category for weight rows ``weights`` [B, N]; NaN rows where
    the resample holds no ground truth of the category (COCO's -1)."""
    n_b = weights.shape[0]
    n_thr, n_det = cat.tp.shape
    npig = weights @ cat.n_gt  # [B]
    out = np.zeros((n_b, n_thr, len(REC_THRS)))
    if n_det:
        w = weights[:, cat.image]  # [B, D]
        tp = np.cumsum(w[:, None, :] * cat.tp[None], axis=2)  # [B, T, D]
        if (cat.tp | cat.fp).all():  # nothing ignored: false positives are the rest of the running count
            fp = np.cumsum(w, axis=1)[:, None, :] - tp
        else:
            fp = np.cumsum(w[:, None, :] * cat.fp[None], axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            rc = tp / npig[:, None, None]
        pr = tp / (tp + fp + np.spacing(1))
        pr = np.maximum.accumulate(pr[..., ::-1], axis=2)[..., ::-1]  # precision envelope
        # a row-wise searchsorted(rc, REC_THRS, 'left'), exact and linear: rank each rc among the thresholds
        # (how many are <= it, non-decreasing along a row); the first index whose rank exceeds j is the count
        # of entries ranked <= j, a per-row histogram's cumulative sum
        rows, n_r = n_b * n_thr, len(REC_THRS)
        rank = _rank(np.nan_to_num(rc.reshape(rows, n_det), nan=0.0, posinf=1.0))
        hist = np.bincount((rank + (n_r + 1) * np.arange(rows)[:, None]).ravel(), minlength=rows * (n_r + 1))
        pos = np.cumsum(hist.reshape(rows, n_r + 1), axis=1)[:, :n_r]
        valid = pos < n_det
        pr_flat = pr.reshape(rows, n_det)
        vals = np.where(valid, np.take_along_axis(pr_flat, np.minimum(pos, n_det - 1), axis=1), 0.0)
        out = vals.reshape(n_b, n_thr, -1)
    out[npig == 0] = np.nan
    return out


_THR_PAD = np.append(REC_THRS, np.inf)


def _rank(rc: np.ndarray) -> np.ndarray:
    """For recall values in [0, 1]: how many of REC_THRS are <= each (what searchsorted(REC_THRS, rc,
    'right') gives), from a first guess floor(100 rc) + 1 corrected by exact comparisons."""
    r = np.minimum(np.floor(rc * 100.0).astype(np.int64) + 1, len(REC_THRS))
    r += _THR_PAD[r] <= rc
    r -= REC_THRS[r - 1] > rc
    return r


def accumulate(ev: PerImageEval, weights: np.ndarray, chunk: int = 64) -> dict[str, np.ndarray]:
    """mAP, mAP50, mAP75 [B] and per-class AP [B, K] for image-weight rows ``weights`` [B, N]."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_b, n_k = weights.shape[0], len(ev.cats)
    ap = np.full((n_b, n_k, len(IOU_THRS)), np.nan)  # AP per category and threshold (mean over R)
    for start in range(0, n_b, chunk):
        w = weights[start:start + chunk]
        for k, cat in enumerate(ev.cats):
            ap[start:start + chunk, k] = _precision(cat, w).mean(axis=2)
    with np.errstate(all="ignore"), _quiet_nan_mean():
        per_class = np.nanmean(ap, axis=2)
        return {"mAP": np.nanmean(per_class, axis=1), "mAP50": np.nanmean(ap[:, :, 0], axis=1),
                "mAP75": np.nanmean(ap[:, :, 5], axis=1), "per_class": per_class}


@contextlib.contextmanager
def _quiet_nan_mean():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def resample_weights(n_images: int, samples: int = 1000, seed: int = 0, method: str = "bayesian") -> np.ndarray:
    """[samples, n_images] image weights of the bootstrap resamples (seeded), each row summing to n_images.

    ``bayesian`` (default, see the module docstring): ``n_images * Dirichlet(1, ..., 1)``, every image
    weighted > 0; ``multinomial``: the classical bootstrap's counts (how often each image is drawn)."""
    rng = np.random.default_rng(seed)
    if method == "bayesian":
        return rng.dirichlet(np.ones(n_images), size=samples) * n_images
    if method != "multinomial":
        raise ValueError(f"method={method!r}; valid: bayesian, multinomial")
    draws = rng.integers(0, n_images, size=(samples, n_images))
    w = np.zeros((samples, n_images))
    np.add.at(w, (np.repeat(np.arange(samples), n_images), draws.ravel()), 1.0)
    return w


def interval(values: np.ndarray, level: float = 0.95) -> list[float | None]:
    """The percentile interval of bootstrap ``values`` (NaN resamples dropped)."""
    v = values[~np.isnan(values)]
    if not v.size:
        return [None, None]
    lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def prob_greater(a: np.ndarray, b: np.ndarray) -> float | None:
    """Paired bootstrap P(A > B): the fraction of shared resamples in which A's value exceeds B's (ties
    count half)."""
    ok = ~(np.isnan(a) | np.isnan(b))
    if not ok.any():
        return None
    return float(np.mean((a[ok] > b[ok]) + 0.5 * (a[ok] == b[ok])))


def mean_std(values) -> dict:
    v = [float(x) for x in values if x is not None and not math.isnan(x)]
    if not v:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


__all__ = ["PerImageEval", "per_image_eval", "accumulate", "resample_weights", "interval", "prob_greater",
           "mean_std", "IOU_THRS", "REC_THRS"]
