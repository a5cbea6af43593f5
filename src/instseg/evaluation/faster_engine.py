"""The ``"faster"`` engine: faster-coco-eval's C++ matching and accumulation, fed without its Python overhead.

``COCO(dict)`` + ``COCOeval_faster`` on a 12,800-result evaluation spent about as long in Python as in C++:
index building, a copy of every annotation per IoU type, ``_prepare`` decoding every result's RLE string only
to encode it again, ``np.unique`` (which imports ``numpy.ma``), a deep copy of the parameters. Here the
checked inputs go straight to the C++ ``COCOevalEvaluateAccumulate``:

* one set of detection dicts serves segm and bbox; only ``area`` changes between the two: the mask area for
  segm, the box area for bbox, as ``COCO.loadRes`` computes them;
* :class:`_Prepared` replaces ``_prepare``, ``evaluate`` and ``computeIoU``: results keep their compressed
  RLE strings; ground-truth polygons are rasterized by faster-coco-eval as in its own ``_prepare``; the IoUs
  of each image and category come from pycocotools' ``iou``, the reference's own function, so only the
  matching and accumulation are faster-coco-eval's (tests check the numbers against pycocotools to 1e-4);
* no ``COCO`` objects: image and category ids come from the checked ground truth.

It relies on faster-coco-eval's ``COCOeval`` attributes (``params``, ``gt_dataset``, ``dt_dataset``) and C++
entry point, as of faster-coco-eval 1.8; ``tests/evaluation`` fail loudly if they change.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from instseg.evaluation.metrics import EvalArrays

_PREPARED: type | None = None
_AREA_CHUNK = 255  # pycocotools' area() fails from 256 RLEs a call on (numpy 2, uint8 overflow): chunks


def import_faster():
    """faster-coco-eval's ``COCOeval_faster`` class, imported without OpenCV when OpenCV is not loaded yet.

    ``faster_coco_eval.core.mask`` imports ``cv2`` (tens of milliseconds) for its optional OpenCV boundary
    backend only, which instseg never uses: the import runs with ``cv2`` marked absent, and the mark is
    removed at once, so a later ``import cv2`` works as usual.
    """
    if "cv2" in sys.modules or "faster_coco_eval.core.faster_eval_api" in sys.modules:
        from faster_coco_eval.core.faster_eval_api import COCOeval_faster

        return COCOeval_faster
    sys.modules["cv2"] = None  # type: ignore[assignment]  # `import cv2` raises ImportError meanwhile
    try:
        from faster_coco_eval.core.faster_eval_api import COCOeval_faster
    finally:
        if sys.modules.get("cv2", 0) is None:
            del sys.modules["cv2"]
    return COCOeval_faster


def _prepared_class() -> type:
    """``COCOeval_faster`` evaluating annotation lists given to it (the class is built on first use, so
    that importing this module imports no faster-coco-eval)."""
    global _PREPARED
    if _PREPARED is not None:
        return _PREPARED
    base = import_faster()
    import faster_coco_eval.faster_eval_api_cpp as cpp
    import pycocotools.mask as mask_api
    from faster_coco_eval.core import mask as faster_mask

    class _Prepared(base):  # type: ignore[misc, valid-type]
        """Evaluates ``self.gts`` / ``self.dts`` (annotation dicts with ``id``, ``area``, ``iscrowd``;
        detections also ``score`` and, for segm, a compressed RLE ``segmentation``)."""

        gts: list[dict]
        dts: list[dict]
        sizes: dict[int, tuple[int, int]]

        def _prepare(self) -> None:
            p = self.params
            segm = p.iouType == "segm"
            self.gt_dataset.clean()
            self.dt_dataset.clean()
            for g in self.gts:  # crowd regions are ignored regions, as in COCOeval
                g["ignore"] = int(g.get("iscrowd", 0))
            if segm:  # ground-truth polygons / RLE -> g["rle"], by faster-coco-eval as in its own _prepare
                faster_mask.calculateRleForAllAnnotations(self.gts, self.sizes, True, False, 0.02, 1)
            gt_pairs, dt_pairs = set(), set()
            gt_add, dt_add = self.gt_dataset.append_ref, self.dt_dataset.append_ref
            for g in self.gts:
                key = (g["image_id"], g["category_id"])
                gt_add(key[0], key[1], g)
                gt_pairs.add(key)
            for d in self.dts:
                key = (d["image_id"], d["category_id"])
                if segm:
                    d["rle"] = d["segmentation"]
                dt_add(key[0], key[1], d)
                dt_pairs.add(key)
            self._nonempty_iou_pairs = gt_pairs & dt_pairs

        def evaluate(self) -> None:
            """Match and accumulate in one C++ call, as ``COCOeval_faster.evaluate`` does, minus its
            logging, its parameter deep copy and ``np.unique`` (which imports ``numpy.ma``)."""
            p = self.params
            p.imgIds, p.catIds, p.maxDets = sorted(set(p.imgIds)), sorted(set(p.catIds)), sorted(p.maxDets)
            self._prepare()
            pairs = self._nonempty_iou_pairs
            ious = [[self.computeIoU(i, c) if (i, c) in pairs else [] for c in p.catIds] for i in p.imgIds]
            self.eval = cpp.COCOevalEvaluateAccumulate(
                p, ious, self.gt_dataset, self.dt_dataset, p.imgIds, p.catIds, bool(p.useCats)
            )

        def computeIoU(self, imgId: int, catId: int):  # noqa: N802, N803 (the base class's names)
            """IoUs of one image and category by pycocotools' ``iou`` (the reference's own function, and
            faster here than faster-coco-eval's on a few masks a call): the detections by descending score
            (stable), at most ``maxDets[-1]``, against the ground truth in annotation order."""
            gt = self.gt_dataset.get(imgId, catId)
            dt = self.dt_dataset.get(imgId, catId)
            if not gt or not dt:
                return []
            dt = sorted(dt, key=_neg_score)[: self.params.maxDets[-1]]
            key = "rle" if self.params.iouType == "segm" else "bbox"
            crowd = [int(g.get("iscrowd", 0)) for g in gt]
            return mask_api.iou([d[key] for d in dt], [g[key] for g in gt], crowd)

    _PREPARED = _Prepared
    return _Prepared


def mask_areas(segmentations: Sequence[dict]) -> list[float]:
    """Pixel areas of compressed RLE masks (``counts`` as ``str`` or ``bytes``)."""
    import pycocotools.mask as mask_api

    out: list[float] = []
    for i in range(0, len(segmentations), _AREA_CHUNK):
        out += np.asarray(mask_api.area(list(segmentations[i : i + _AREA_CHUNK])), np.float64).tolist()
    return out


def detections(results: Sequence[dict]) -> list[dict]:
    """The detection dicts both IoU types evaluate: new dicts (the inputs are left alone) with the ``id``
    (1, 2, ... in input order, as ``COCO.loadRes`` numbers them) and ``iscrowd`` 0."""
    out = []
    for i, r in enumerate(results, 1):
        d = dict(r)
        d["id"], d["iscrowd"] = i, 0
        out.append(d)
    return out


def evaluate_type(
    gts: list[dict],
    dts: list[dict],
    iou_type: str,
    sizes: dict[int, tuple[int, int]],
    cat_ids: Sequence[int],
) -> EvalArrays:
    """COCO evaluation of one IoU type. ``gts``: checked ground-truth annotations (``area``, ``iscrowd``);
    ``dts``: :func:`detections`, whose ``area`` is set here (mask area for segm, box area for bbox).
    Both lists' dicts are annotated in place (``ignore``, ``rle``)."""
    if iou_type == "segm":
        areas = mask_areas([d["segmentation"] for d in dts])
    else:
        areas = [float(d["bbox"][2]) * float(d["bbox"][3]) for d in dts]
    for d, area in zip(dts, areas, strict=True):
        d["area"] = area
    ev = _prepared_class()(None, None, iou_type, print_function=_silent)
    ev.gts, ev.dts, ev.sizes = gts, dts, sizes
    ev.params.imgIds = sorted(sizes)
    ev.params.catIds = sorted(cat_ids)
    ev.evaluate()  # evaluate + accumulate
    return EvalArrays.from_cocoeval(ev)


def _silent(*args, **kwargs) -> None:
    return None


def _neg_score(d: dict) -> float:
    return -d["score"]
