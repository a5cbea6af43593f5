"""COCO segm/bbox evaluation with two engines that give the same numbers.

* ``"faster"`` (default): faster-coco-eval's C++ ``COCOeval_faster``.
* ``"pycocotools"``: the reference ``pycocotools.cocoeval.COCOeval``.

Decisions (both engines follow them, so they agree to 1e-4; the tests check it):

* **segm areas come from the masks.** When a result carries a ``bbox``, ``COCO.loadRes`` takes the box area
  as the instance area, which moves detections between the small/medium/large ranges. As in detectron2 and
  MMDetection, the ``bbox`` is dropped from the results of the segm evaluation, so APs/APm/APl of masks use
  mask areas (AP, AP50, AP75 and AR are not affected).
* **No predictions at all** is a valid input (pycocotools' ``loadRes`` crashes on an empty list; instseg
  builds the empty result set itself): AP and AR are 0 for every category that has ground truth, NaN where
  COCOeval reports -1 (no ground truth in that range).
* **Every ground-truth image is evaluated**, with or without predictions; predictions on images without
  ground truth are false positives. Crowd regions (``iscrowd=1``) are ignored regions, as in COCOeval.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
from collections.abc import Callable, Sequence
from pathlib import Path

from instseg.errors import DatasetError, InstsegError
from instseg.evaluation import faster_engine
from instseg.evaluation.checks import GroundTruth, check_results, load_ground_truth, require_masks
from instseg.evaluation.metrics import EvalArrays, Metrics, TypeMetrics
from instseg.evaluation.results import load_results, predictions_to_coco_results
from instseg.structures import ImagePrediction

IOU_TYPES = ("segm", "bbox")


def _fresh(gt: dict) -> dict:
    """A copy of the ground truth whose annotation dicts the engine may annotate (``ignore``, ``rle``...)."""
    return {**gt, "annotations": [dict(a) for a in gt["annotations"]]}


def run_faster(gt: dict, results: list[dict], iou_type: str) -> EvalArrays:
    """Evaluate with faster-coco-eval (C++), see :mod:`instseg.evaluation.faster_engine`. Neither ``gt`` nor
    ``results`` is modified. For segm the instance areas are the mask areas, even where results have boxes."""
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    cat_ids = [c["id"] for c in gt["categories"]]
    gts = _fresh(gt)["annotations"]
    return faster_engine.evaluate_type(gts, faster_engine.detections(results), iou_type, sizes, cat_ids)


def run_pycocotools(gt: dict, results: list[dict], iou_type: str) -> EvalArrays:
    """Evaluate with pycocotools' COCOeval (the reference); its printing is silenced."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = _fresh(gt)
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes indexes results[0]: build the empty detection set directly
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
    return EvalArrays.from_cocoeval(ev)


#: engine name -> function(ground-truth dict, results, iou type) -> accumulated arrays
ENGINES: dict[str, Callable[[dict, list[dict], str], EvalArrays]] = {
    "faster": run_faster,
    "pycocotools": run_pycocotools,
}


def _engine(name: str) -> Callable[[dict, list[dict], str], EvalArrays]:
    try:
        return ENGINES[name]
    except KeyError:
        raise InstsegError(f"unknown evaluation engine {name!r}; valid: {', '.join(ENGINES)}") from None


def _iou_types(iou_types: Sequence[str]) -> tuple[str, ...]:
    if isinstance(iou_types, str):
        iou_types = (iou_types,)
    out = tuple(dict.fromkeys(iou_types))
    bad = [t for t in out if t not in IOU_TYPES]
    if bad or not out:
        raise InstsegError(f"unknown IoU type(s) {bad or '(none given)'}; valid: {', '.join(IOU_TYPES)}")
    return out


def _match_image_ids(preds: Sequence[ImagePrediction], gt: GroundTruth) -> list[ImagePrediction]:
    """Copies of ``preds`` with ``image_id`` filled from the ground truth's file names where it is None."""
    out = []
    for pred in preds:
        if pred.image_id is None:
            path = Path(pred.path) if pred.path is not None else None
            image_id = None if path is None else gt.file_ids.get(str(path), gt.file_ids.get(path.name))
            if image_id is None:
                raise DatasetError(
                    f"prediction for {path}: no image_id and no image of that file name in {gt.source}; "
                    "set ImagePrediction.image_id or predict on the images the ground truth lists"
                )
            pred = dataclasses.replace(pred, image_id=image_id)
        out.append(pred)
    return out


def _as_results(predictions, gt: GroundTruth, category_ids: Sequence[int] | None) -> tuple[list, str]:
    if isinstance(predictions, (str, Path)):
        return load_results(predictions), str(predictions)
    if not isinstance(predictions, (list, tuple)):
        raise InstsegError(
            f"predictions must be a results JSON path, a list of COCO result dicts or a list of "
            f"ImagePrediction, got {type(predictions).__name__}"
        )
    if any(isinstance(p, ImagePrediction) for p in predictions):
        if not all(isinstance(p, ImagePrediction) for p in predictions):
            raise InstsegError("predictions mix ImagePrediction objects and other entries; pass one kind")
        ids = list(category_ids) if category_ids is not None else gt.class_ids
        preds = _match_image_ids(predictions, gt)
        return predictions_to_coco_results(preds, ids), "<ImagePrediction list>"
    return list(predictions), "<results list>"


def evaluate(
    gt: str | Path | dict,
    predictions: str | Path | list,
    iou_types: Sequence[str] = IOU_TYPES,
    engine: str = "faster",
    category_ids: Sequence[int] | None = None,
) -> Metrics:
    """COCO evaluation of ``predictions`` against the ground truth ``gt``.

    Args:
        gt: a COCO ground-truth JSON path, or the loaded dict.
        predictions: a COCO results JSON path, a list of COCO result dicts (RLE ``segmentation``, ``bbox``
            xywh in pixels, ``score``, ``category_id``, ``image_id``), or a list of :class:`ImagePrediction`
            (images matched by ``image_id``, else by file name).
        iou_types: any of "segm" and "bbox".
        engine: "faster" (faster-coco-eval) or "pycocotools" (the reference); same numbers.
        category_ids: for ImagePrediction input, the COCO category id of each 0-based label; default the
            class order instseg's converters record in the ground truth (``info.instseg.category_ids``),
            else the category ids in ascending order.

    Raises :class:`DatasetError` naming the file and entry for unusable inputs (an image or category id the
    ground truth does not have, masks of the wrong size, malformed JSON).
    """
    run = _engine(engine)
    types = _iou_types(iou_types)
    with gc_paused():
        return _evaluate(gt, predictions, types, engine, run, category_ids)


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: an evaluation allocates tens of thousands of dicts and lists (the
    parsed JSON, the detections) and no reference cycle, and collections triggered by those allocations
    would walk every object of the process again and again (5-10% of an evaluation, more in a big process).
    The collector's state is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _evaluate(gt, predictions, types: tuple[str, ...], engine: str, run, category_ids) -> Metrics:
    ground = load_ground_truth(gt)
    if "segm" in types:
        require_masks(ground)
    raw, source = _as_results(predictions, ground, category_ids)
    results = check_results(raw, ground, source, need_segm="segm" in types, need_bbox="bbox" in types)
    metrics = Metrics(engine=engine, num_images=len(ground.sizes), num_predictions=len(results))
    if engine == "faster":  # one set of detection dicts for every IoU type: see faster_engine
        dts = results  # check_results' own dicts, numbered: the engine may annotate them
        gts = ground.dataset["annotations"]  # load_ground_truth's own copies: the engine may annotate them
        for t in types:
            arrays = faster_engine.evaluate_type(gts, dts, t, ground.sizes, ground.cat_ids)
            setattr(metrics, t, TypeMetrics.from_arrays(arrays, ground.names))
        return metrics
    for t in types:
        if t == "segm":  # mask areas for the area ranges: drop the box (see the module docstring)
            per_type = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        else:
            per_type = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
        arrays = run(ground.dataset, per_type, t)
        setattr(metrics, t, TypeMetrics.from_arrays(arrays, ground.names))
    return metrics
