"""Check and normalize the evaluator's inputs: a COCO ground truth and COCO results against it.

Everything that would make pycocotools crash with a bare ``KeyError``/``AssertionError``, or silently score
wrong, is turned into a :class:`DatasetError` that names the file, the entry and the fix. The inputs are
never modified: a normalized entry is a new (shallow) dict.
"""

from __future__ import annotations

import re

import math
from dataclasses import dataclass, field
from pathlib import Path

from instseg.data.masks import normalize_rle

_RLE_TEXT = re.compile(r"[0-o]*")  # the compressed COCO RLE alphabet, '0' (48) .. 'o' (111)
from instseg.errors import DatasetError
from instseg.evaluation.results import _encoded, coco_mask_api, read_json_file


@dataclass
class GroundTruth:
    """A checked COCO ground truth ready for COCOeval."""

    dataset: dict  # {"images", "annotations", "categories"}; annotations renumbered when needed
    source: str  # file name, or "<dict>", for messages
    names: dict[int, str]  # category id -> name
    sizes: dict[int, tuple[int, int]]  # image id -> (height, width)
    file_ids: dict[str, int] = field(default_factory=dict)  # file_name and its base name -> image id
    notes: list[str] = field(default_factory=list)  # what was repaired, e.g. annotation ids renumbered

    class_ids: list[int] = field(default_factory=list)  # COCO category id of each 0-based class index

    @property
    def cat_ids(self) -> list[int]:
        return sorted(self.names)


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise DatasetError(msg)


def load_ground_truth(gt: str | Path | dict) -> GroundTruth:
    """Read and check a COCO ground truth (a JSON path or an already-loaded dict).

    Repairs, recorded in ``notes``: annotation ids that are not unique positive integers are renumbered from
    1 (COCOeval uses the id 0 as "unmatched", so a ground truth with id 0 would score its matches as false
    positives); a missing ``area`` is computed from the mask (or the box for box-only annotations); a missing
    ``iscrowd`` is 0. Raises :class:`DatasetError` for what cannot be repaired.
    """
    if isinstance(gt, dict):
        source, data = "<ground-truth dict>", gt
    else:
        source = str(gt)
        data = read_json_file(gt, "ground-truth")
    _require(
        isinstance(data, dict), f"{source}: expected a COCO JSON object with images/annotations/categories"
    )
    for key in ("images", "annotations", "categories"):
        _require(
            isinstance(data.get(key), list),
            f"{source}: missing or invalid '{key}' list; is this a COCO ground-truth file? "
            "(a results file is a plain list; convert a YOLO dataset with `instseg convert yolo2coco`)",
        )
    names: dict[int, str] = {}
    for i, cat in enumerate(data["categories"]):
        _require(
            isinstance(cat, dict) and isinstance(cat.get("id"), int),
            f"{source}: categories[{i}] has no integer 'id'",
        )
        _require(cat["id"] not in names, f"{source}: categories[{i}]: duplicate category id {cat['id']}")
        names[cat["id"]] = str(cat.get("name", cat["id"]))
    sizes: dict[int, tuple[int, int]] = {}
    file_ids: dict[str, int] = {}
    by_base: dict[str, list[int]] = {}
    for i, img in enumerate(data["images"]):
        ok = isinstance(img, dict) and all(isinstance(img.get(k), int) for k in ("id", "height", "width"))
        _require(ok, f"{source}: images[{i}] needs integer 'id', 'height' and 'width'; fix the file")
        _require(img["id"] not in sizes, f"{source}: images[{i}]: duplicate image id {img['id']}")
        sizes[img["id"]] = (img["height"], img["width"])
        fname = str(img.get("file_name") or "")
        if fname:
            file_ids[fname] = img["id"]
            by_base.setdefault(Path(fname).name, []).append(img["id"])
    for base, img_ids in by_base.items():  # a base name shared by several images matches none of them
        if len(img_ids) == 1:
            file_ids.setdefault(base, img_ids[0])

    notes: list[str] = []
    anns = data["annotations"]
    ids = [a.get("id") if isinstance(a, dict) else None for a in anns]
    renumber = not all(isinstance(x, int) and x > 0 for x in ids) or len(set(ids)) != len(ids)
    if renumber:
        notes.append(f"{source}: annotation ids are not unique positive integers; renumbered 1..{len(anns)}")
    out_anns = []
    missing_area = 0
    for i, ann in enumerate(anns):  # messages are formatted only on failure: this loop is hot
        if not isinstance(ann, dict):
            raise DatasetError(f"{source}: annotations[{i}] is not an object")
        if ann.get("image_id") not in sizes:
            raise DatasetError(
                f"{source}: annotations[{i}]: image_id {ann.get('image_id')!r} is not in 'images'"
            )
        if ann.get("category_id") not in names:
            raise DatasetError(
                f"{source}: annotations[{i}]: category_id {ann.get('category_id')!r} is not in 'categories' "
                f"(ids {sorted(names)})"
            )
        seg, box = ann.get("segmentation"), ann.get("bbox")
        has_seg = bool(seg) and isinstance(seg, (list, dict))
        has_box = isinstance(box, list) and len(box) == 4
        if not (has_seg or has_box):
            raise DatasetError(
                f"{source}: annotations[{i}]: neither 'segmentation' nor a 4-number 'bbox'; fix or remove it"
            )
        a = dict(ann)
        if renumber:
            a["id"] = i + 1
        a.setdefault("iscrowd", 0)
        h, w = sizes[a["image_id"]]
        if isinstance(seg, dict) and list(seg.get("size", ())) != [h, w]:
            raise DatasetError(
                f"{source}: annotations[{i}]: unusable segmentation (RLE size {seg.get('size')} != image "
                f"size [{h}, {w}] (h, w)); fix the image entry or the mask"
            )
        has_area = isinstance(a.get("area"), (int, float)) and not isinstance(a.get("area"), bool)
        if not has_box or not has_area:
            if has_seg:
                rle = _seg_to_rle(seg, h, w, f"{source}: annotations[{i}]")
                if not has_box:
                    a["bbox"] = [float(v) for v in coco_mask_api().toBbox(rle)]
                if not has_area:
                    a["area"] = float(coco_mask_api().area(rle))
                    missing_area += 1
            else:
                a["area"] = float(box[2]) * float(box[3])
        out_anns.append(a)
    if missing_area:
        notes.append(
            f"{source}: {missing_area} annotations without a numeric 'area' got the area of their mask"
        )
    dataset = {"images": data["images"], "annotations": out_anns, "categories": data["categories"]}
    if "info" in data:
        dataset["info"] = data["info"]
    return GroundTruth(dataset, source, names, sizes, file_ids, notes, _class_ids(data, names))


def require_masks(gt: GroundTruth) -> None:
    """Raise :class:`DatasetError` when a ground-truth annotation has no mask, which segm cannot score."""
    missing = [i for i, a in enumerate(gt.dataset["annotations"]) if not a.get("segmentation")]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DatasetError(
            f"{gt.source}: annotations[{missing[0]}]{more} has no 'segmentation', so masks cannot be scored; "
            "evaluate boxes only (iou_types=('bbox',), or `instseg eval --iou-type bbox`)"
        )


def _class_ids(data: dict, names: dict[int, str]) -> list[int]:
    """Category id of each 0-based class: the order instseg's converters record in
    ``info.instseg.category_ids`` (as :func:`instseg.data.coco.load_coco` reads it), else ascending ids."""
    info = data.get("info")
    meta = info.get("instseg") if isinstance(info, dict) else None
    written = meta.get("category_ids") if isinstance(meta, dict) else None
    if isinstance(written, list) and sorted(written) == sorted(names):
        return [int(i) for i in written]
    return sorted(names)


def _seg_to_rle(seg, height: int, width: int, where: str) -> dict:
    """A COCO segmentation (polygons, compressed or uncompressed RLE) as one compressed RLE (bytes counts)."""
    api = coco_mask_api()
    try:
        if isinstance(seg, list):  # polygons
            polys = [p for p in seg if isinstance(p, list) and len(p) >= 6]
            if not polys:
                raise ValueError("no polygon with at least 3 points")
            return api.merge(api.frPyObjects(polys, height, width))
        _require("counts" in seg and "size" in seg, f"{where}: RLE segmentation needs 'size' and 'counts'")
        if list(seg["size"]) != [height, width]:
            raise ValueError(f"RLE size {list(seg['size'])} != image size [{height}, {width}] (h, w)")
        return _encoded(normalize_rle(seg))
    except (ValueError, TypeError) as e:
        raise DatasetError(f"{where}: unusable segmentation ({e}); fix or remove the annotation") from e


def check_results(
    results: list, gt: GroundTruth, source: str, need_segm: bool, need_bbox: bool
) -> list[dict]:
    """Check COCO results against the ground truth; return them normalized, as new dicts (the inputs are
    left alone) numbered as ``COCO.loadRes`` numbers them: ``id`` 1, 2, ... in input order, ``iscrowd`` 0.

    Normalization: RLE ``counts`` as ``str`` (uncompressed RLE and polygons are encoded at the image size);
    a missing ``bbox`` becomes the tight box of the mask. Errors name the results file, the entry index and
    the offending id: an image id or a category id that the ground truth does not have, a missing score, a
    missing segmentation when segm is evaluated, an RLE whose size is not the image's.
    """
    _require(isinstance(results, list), f"{source}: COCO results must be a list of objects")
    out: list[dict] = []
    names, sizes = gt.names, gt.sizes
    size_lists = {k: list(v) for k, v in sizes.items()}
    for i, res in enumerate(results):  # messages are formatted only on failure: this loop is hot
        if not isinstance(res, dict):
            raise DatasetError(f"{source}: result {i} is not an object")
        img_id = res.get("image_id")
        if not isinstance(img_id, (int, str)) or isinstance(img_id, bool) or img_id not in sizes:
            raise DatasetError(
                f"{source}: result {i}: image_id {img_id!r} is not in the ground truth {gt.source} "
                f"({len(sizes)} images, ids {min(sizes, default='-')}..{max(sizes, default='-')}); "
                "predict on the same split the ground truth was made from"
            )
        cat = res.get("category_id")
        if not isinstance(cat, (int, str)) or isinstance(cat, bool) or cat not in names:
            raise DatasetError(
                f"{source}: result {i}: category_id {res.get('category_id')!r} is not in the ground truth "
                f"(category ids {sorted(names)}); map 0-based labels through the ground truth's category ids"
            )
        score = res.get("score")
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            raise DatasetError(
                f"{source}: result {i}: missing or non-numeric 'score'; is this a ground-truth file rather "
                "than results?"
            )
        r = dict(res)
        r["id"], r["iscrowd"] = i + 1, 0
        seg = res.get("segmentation")
        if seg is None:
            if need_segm:
                raise DatasetError(
                    f"{source}: result {i}: no 'segmentation'; these look like box-only results: evaluate "
                    "bbox only (iou_types=('bbox',), or `instseg eval --iou-type bbox`)"
                )
        elif not isinstance(seg, dict) or not isinstance(seg.get("counts"), str):
            h, w = sizes[img_id]
            rle = _seg_to_rle(seg, h, w, f"{source}: result {i}")
            r["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode("utf-8")}
        elif seg.get("size") != size_lists[img_id] and list(seg.get("size") or ()) != size_lists[img_id]:
            raise DatasetError(
                f"{source}: result {i}: mask size {seg.get('size')} != image {img_id} size "
                f"{size_lists[img_id]} (h, w); write masks at the original image size"
            )
        elif _RLE_TEXT.fullmatch(seg["counts"]) is None:
            # the alphabet only (a regex, in C): decoding every string in Python to check its run sum would
            # cost ~250 us a mask, 5x the whole evaluation; pycocotools' area/iou/toBbox never write a
            # decoded mask, so a wrong sum cannot crash them
            try:
                normalize_rle(seg)
            except ValueError as e:
                raise DatasetError(f"{source}: result {i}: segmentation is not a valid COCO RLE ({e}); "
                                   "re-export the results") from e
        box = res.get("bbox")
        if isinstance(box, list) and len(box) == 4 and not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
            raise DatasetError(f"{source}: result {i}: 'bbox' {str(box)[:60]} is not 4 finite numbers [x, y, w, h]")
        if not (isinstance(box, list) and len(box) == 4):
            if seg is None:
                raise DatasetError(f"{source}: result {i}: neither a 4-number 'bbox' nor a 'segmentation'")
            if need_bbox:
                api = coco_mask_api()
                r["bbox"] = [float(v) for v in api.toBbox(_encoded(r["segmentation"]))]
        out.append(r)
    _check_rle_areas(out, sizes, source)
    return out


def _check_rle_areas(results: list[dict], sizes: dict, source) -> None:
    """Runs that decode to a negative length wrap to a huge area in pycocotools' C code (unsigned counts) and
    would be scored as garbage: one batched ``area`` call (chunks of 255: pycocotools 2.0.11 with numpy 2 fails
    on longer lists) finds them without decoding any mask in Python."""
    idx = [i for i, r in enumerate(results) if isinstance(r.get("segmentation"), dict)]
    if not idx:
        return
    api = coco_mask_api()
    for start in range(0, len(idx), 255):
        chunk = idx[start:start + 255]
        areas = api.area([_encoded_fast(results[i]["segmentation"]) for i in chunk])
        for i, area in zip(chunk, areas):
            h, w = sizes[results[i]["image_id"]]
            if int(area) > h * w:
                raise DatasetError(f"{source}: result {i}: segmentation is not a valid COCO RLE (its runs cover "
                                   f"more than the {h}x{w} image); re-export the results")


def _encoded_fast(seg: dict) -> dict:
    counts = seg["counts"]
    return {"size": seg["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
