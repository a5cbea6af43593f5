"""COCO results ("detections") JSON: the one prediction format every backend writes and the evaluator reads.

A result is one predicted instance::

    {"image_id": 42, "category_id": 3, "score": 0.91,
     "bbox": [x, y, w, h],                                  # absolute pixels, top-left corner + size
     "segmentation": {"size": [h, w], "counts": "..."}}    # compressed COCO RLE at the original image size

``category_id`` is the COCO category id of the ground truth, not instseg's 0-based class index; the mapping
is ``category_ids[label]`` (by default ``label + 1``, what instseg's converters write).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from instseg.errors import DatasetError
from instseg.structures import ImagePrediction

try:  # optional: parses a results JSON about twice as fast as the json module
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

BOX_DECIMALS = 2  # 1/100 pixel: far below annotation noise, keeps files small
SCORE_DECIMALS = 6


def coco_mask_api():
    """pycocotools' mask module, through :func:`instseg.data.masks.coco_mask_api`, imported on first use
    (``instseg eval`` does not need the rest of ``instseg.data`` at start-up)."""
    from instseg.data.masks import coco_mask_api as api

    return api()


def _encoded(rle: dict) -> dict:
    """A compressed RLE with bytes counts, as pycocotools' C functions want it."""
    counts = rle["counts"]
    if isinstance(counts, list):
        h, w = rle["size"]
        return coco_mask_api().frPyObjects(rle, int(h), int(w))
    if isinstance(counts, str):
        counts = counts.encode("utf-8")
    return {"size": rle["size"], "counts": counts}


def rle_boxes_xywh(rles: Sequence[dict]) -> np.ndarray:
    """Tight ``[x, y, w, h]`` boxes (absolute pixels) of compressed RLE masks; zeros for empty masks."""
    if not rles:
        return np.zeros((0, 4), np.float64)
    return np.asarray(coco_mask_api().toBbox([_encoded(r) for r in rles]), np.float64).reshape(-1, 4)


def predictions_to_coco_results(
    preds: Sequence[ImagePrediction], category_ids: Sequence[int] | None = None
) -> list[dict]:
    """COCO result dicts of ``preds`` (one per predicted instance, in input order).

    ``category_ids[label]`` is the COCO category id of 0-based class ``label`` (default ``label + 1``).
    Boxes are written as ``[x, y, w, h]`` rounded to 1/100 pixel; when a prediction has masks but no boxes,
    the boxes are the masks' tight boxes. RLE ``counts`` are ``str``. Raises :class:`DatasetError` when an
    image has no ``image_id``, a label has no category id, or the masks do not fit the image.
    """
    from instseg.data.masks import rle_as_text

    results: list[dict] = []
    for pred in preds:
        where = f"prediction for {pred.path or 'image'}"
        n = len(pred)
        if n == 0:
            continue
        if pred.image_id is None:
            raise DatasetError(
                f"{where}: image_id is None; set ImagePrediction.image_id to the COCO image id, or pass the "
                "predictions to evaluate(gt, ...) which matches them to the ground truth by file name"
            )
        labels = np.asarray(pred.labels, dtype=np.int64).reshape(-1)
        scores = np.asarray(pred.scores, dtype=np.float64).reshape(-1)
        boxes = np.asarray(pred.boxes, dtype=np.float64).reshape(-1, 4)
        masks = [rle_as_text(m) for m in pred.masks]
        if len(labels) != n or (masks and len(masks) != n) or (len(boxes) and len(boxes) != n):
            raise DatasetError(
                f"{where}: {n} scores but {len(labels)} labels, {len(boxes)} boxes, {len(masks)} masks; "
                "every per-instance array must have one entry per instance"
            )
        for m in masks:
            if m["size"] != [pred.height, pred.width]:
                raise DatasetError(
                    f"{where}: mask size {m['size']} != image size [{pred.height}, {pred.width}] (h, w); "
                    "map masks back to the original image before writing results"
                )
        if len(boxes):
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        elif masks:
            xywh = rle_boxes_xywh(masks)
        else:
            raise DatasetError(f"{where}: {n} instances with neither boxes nor masks; a result needs one")
        ids = _category_ids(labels, category_ids, where)
        xywh_list = np.round(xywh, BOX_DECIMALS).tolist()
        score_list = np.round(scores, SCORE_DECIMALS).tolist()
        image_id = int(pred.image_id)
        for k in range(n):
            res = {"image_id": image_id, "category_id": ids[k], "bbox": xywh_list[k], "score": score_list[k]}
            if masks:
                res["segmentation"] = masks[k]
            results.append(res)
    return results


def _category_ids(labels: np.ndarray, category_ids: Sequence[int] | None, where: str) -> list[int]:
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{where}: negative class label {int(labels.min())}; labels are 0-based indices")
    if category_ids is None:
        return (labels + 1).tolist()
    table = np.asarray(list(category_ids), dtype=np.int64)
    if labels.size and labels.max() >= len(table):
        raise DatasetError(
            f"{where}: class label {int(labels.max())} has no category id (category_ids has {len(table)}: "
            f"{table.tolist()}); pass one COCO category id per class name"
        )
    return table[labels].tolist()


def write_results_json(path: str | Path, results: list[dict]) -> Path:
    """Write COCO results to ``path`` (compact JSON, via a temporary file and a rename)."""
    from instseg.data.coco import write_json_atomic

    return write_json_atomic(path, results)


def read_json_file(path: str | Path, what: str) -> object:
    """Parse a JSON file, turning I/O and syntax errors into :class:`DatasetError` with file:line:column."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as e:
        raise DatasetError(f"{path}: {what} file not found; check the path") from e
    except OSError as e:
        raise DatasetError(f"{path}: {what} file cannot be read ({e})") from e
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN, huge integers, or a real error: the standard parser decides and words the message
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"{path}:{e.lineno}:{e.colno}" if isinstance(e, json.JSONDecodeError) else str(path)
        raise DatasetError(f"{where}: invalid JSON in the {what} file ({e}); re-export the file") from e


def load_results(path: str | Path) -> list[dict]:
    """Read a COCO results JSON (a list of result dicts). The entries are checked against the ground truth
    by :func:`instseg.evaluation.evaluate`, not here."""
    obj = read_json_file(path, "results")
    if isinstance(obj, dict) and isinstance(obj.get("annotations"), list):
        return obj["annotations"]  # some tools wrap results as {"annotations": [...]}
    if not isinstance(obj, list):
        raise DatasetError(
            f"{path}: a COCO results file is a JSON list of {{image_id, category_id, score, bbox, "
            f"segmentation}} objects, got a {type(obj).__name__}; pass the detections file, not the "
            "ground truth"
        )
    return obj
