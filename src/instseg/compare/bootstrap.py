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
from dataclasses import dataclass, field

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
    prep: "_Prepared | None" = field(default=None, repr=False)

    def prepared(self) -> "_Prepared":
        if self.prep is None:
            self.prep = _prepare(self)
        return self.prep


@dataclass
class _Prepared:
    """What :func:`accumulate` needs of one category, indexed by its true positives only.

    Precision and recall change only at a true positive, and the precision envelope at a true positive is
    the maximum over the true positives from there on (a false positive's precision is below the true
    positive before it), so COCO's interpolated precision needs, per threshold, the running weight of the
    true positives and of all counted detections at each true positive: ``P`` positions, not ``D``."""

    tp_img: np.ndarray  # [T, P] image of the p-th true positive at threshold t (0 where padded)
    tp_real: np.ndarray  # [T, P] 1.0 for a true positive, 0.0 for padding (P = the most TPs of any t)
    starts: np.ndarray  # [U] reduceat starts of the detection segments ending at each union TP position
    stop: int  # detections [0, stop) reach the last true positive
    col: np.ndarray  # [T, P] union column of each (t, p)
    ignored: list  # per t: (image of each ignored detection, how many ignored come up to each TP), or None


def _prepare(cat: CategoryEval) -> _Prepared:
    n_thr = cat.tp.shape[0]
    pos = [np.flatnonzero(cat.tp[t]) for t in range(n_thr)]
    n_pos = max((len(q) for q in pos), default=0)
    tp_img = np.zeros((n_thr, n_pos), dtype=np.int64)
    tp_real = np.zeros((n_thr, n_pos))
    col = np.zeros((n_thr, n_pos), dtype=np.int64)
    union = np.unique(np.concatenate(pos)) if n_pos else np.zeros(0, dtype=np.int64)
    ignored: list = []
    for t, q in enumerate(pos):
        tp_img[t, :len(q)] = cat.image[q]
        tp_real[t, :len(q)] = 1.0
        c = np.searchsorted(union, q)
        col[t, :len(q)] = c
        col[t, len(q):] = c[-1] if len(q) else 0
        ig = np.flatnonzero(~(cat.tp[t] | cat.fp[t]))
        if len(ig) and len(q):
            upto = np.searchsorted(ig, q, side="right")  # ignored detections up to each true positive
            upto = np.concatenate([upto, np.full(n_pos - len(q), upto[-1])])
            ignored.append((cat.image[ig], upto))
        else:
            ignored.append(None)
    starts = np.concatenate([[0], union[:-1] + 1]) if len(union) else np.zeros(0, dtype=np.int64)
    return _Prepared(tp_img=tp_img, tp_real=tp_real, starts=starts, stop=int(union[-1]) + 1 if len(union) else 0,
                     col=col, ignored=ignored)


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


def _category_ap(cat: CategoryEval, weights: np.ndarray) -> np.ndarray:
    """AP [B, T] (mean of the interpolated precision at the 101 recall points) of one category for weight
    rows ``weights`` [B, N]; NaN rows where the resample holds no ground truth of the category (COCO's -1).

    Per threshold, at the p-th true positive: ``tp`` = running weight of the true positives, ``cnt`` = of
    every counted (not ignored) detection so far; recall ``tp / npig``, precision ``tp / (cnt + eps)``
    (COCO's float expression), its envelope from the right; recall point r takes the envelope at the first
    true positive whose recall reaches r, so the sum over r is the envelope times the number of recall points
    each true positive newly reaches (``rank`` = how many of the points lie at or below its recall)."""
    c = cat.prepared()
    n_b, n_thr = weights.shape[0], cat.tp.shape[0]
    npig = weights @ cat.n_gt
    ap = np.zeros((n_b, n_thr))
    if c.tp_img.shape[1]:
        tp = np.cumsum(weights[:, c.tp_img] * c.tp_real, axis=2)  # [B, T, P]
        seg = np.add.reduceat(weights[:, cat.image[:c.stop]], c.starts, axis=1)  # [B, U]
        cnt = np.cumsum(seg, axis=1)[:, c.col]  # [B, T, P] every detection up to the TP
        for t, ig in enumerate(c.ignored):
            if ig is not None:
                run = np.concatenate([np.zeros((n_b, 1)), np.cumsum(weights[:, ig[0]], axis=1)], axis=1)
                cnt[:, t] -= run[:, ig[1]]
        with np.errstate(divide="ignore", invalid="ignore"):
            rc = tp / npig[:, None, None]
        pr = tp / (cnt + np.spacing(1))
        env = np.maximum.accumulate(pr[..., ::-1], axis=2)[..., ::-1]
        rank = _rank(np.nan_to_num(rc, nan=0.0, posinf=1.0))
        rank[..., 1:] -= rank[..., :-1].copy()
        ap = np.einsum("btp,btp->bt", env, rank) / len(REC_THRS)
    ap[npig == 0] = np.nan
    return ap


def precision_curves(cat: CategoryEval) -> np.ndarray:
    """COCO's interpolated precision [T, R] of the full set (every image once); NaN without ground truth."""
    c = cat.prepared()
    n_thr = cat.tp.shape[0]
    npig = float(cat.n_gt.sum())
    out = np.zeros((n_thr, len(REC_THRS)))
    if npig == 0:
        return out + np.nan
    ones = np.ones((1, len(cat.n_gt)))
    if c.tp_img.shape[1]:
        tp = np.cumsum(c.tp_real, axis=1)
        cnt = np.cumsum(np.add.reduceat(ones[:, cat.image[:c.stop]], c.starts, axis=1), axis=1)[0, c.col]
        for t, ig in enumerate(c.ignored):
            if ig is not None:
                cnt[t] -= ig[1]
        pr = tp / (cnt + np.spacing(1))
        env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(n_thr):
            n = int(c.tp_real[t].sum())
            idx = np.searchsorted(tp[t, :n] / npig, REC_THRS, side="left")
            ok = idx < n
            out[t, ok] = env[t, idx[ok]]
    return out


_THR_PAD = np.append(REC_THRS, np.inf)


def _rank(rc: np.ndarray) -> np.ndarray:
    """For recall values in [0, 1]: how many of REC_THRS are <= each (what searchsorted(REC_THRS, rc,
    'right') gives), from a first guess floor(100 rc) + 1 corrected by exact comparisons."""
    r = np.minimum(np.floor(rc * 100.0).astype(np.int64) + 1, len(REC_THRS))
    r += _THR_PAD[r] <= rc
    r -= REC_THRS[r - 1] > rc
    return r


def accumulate(ev: PerImageEval, weights: np.ndarray, chunk: int | None = None) -> dict[str, np.ndarray]:
    """mAP, mAP50, mAP75 [B] and per-class AP [B, K] for image-weight rows ``weights`` [B, N].

    ``chunk`` rows at a time (default: as many as keep each temporary array under ~16M numbers)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_b, n_k = weights.shape[0], len(ev.cats)
    ap = np.full((n_b, n_k, len(IOU_THRS)), np.nan)  # AP per category and threshold (mean over R)
    for k, cat in enumerate(ev.cats):
        c = cat.prepared()
        size = max(c.tp_img.size, c.stop, 1)
        step = chunk or max(1, min(n_b, (1 << 24) // size))
        for start in range(0, n_b, step):
            ap[start:start + step, k] = _category_ap(cat, weights[start:start + step])
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


__all__ = ["PerImageEval", "per_image_eval", "accumulate", "precision_curves", "resample_weights", "interval", "prob_greater",
           "mean_std", "IOU_THRS", "REC_THRS"]
