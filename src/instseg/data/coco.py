"""COCO instance-segmentation JSON: read it into :class:`ImageRecord` s, write records back out.

Reading keeps everything COCO can hold: polygons (several per instance), RLE (compressed or uncompressed),
``iscrowd``, box-only annotations. Bad annotations are reported as :class:`Finding` s naming the JSON file
and the annotation id, and skipped; only a file that cannot be used at all raises ``DatasetError``.

Writing (:func:`records_to_coco`) gives ids that pycocotools and COCOeval accept: image ids and annotation
ids are integers from 1, category ids default to ``index + 1``; the ``names -> category id`` map is written
both as ``categories`` and in ``info["instseg"]`` so that reading the file back gives the same class order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instseg.data.masks import instance_to_rle, normalize_rle, polygons_bbox, rle_area, rle_to_bbox
from instseg.data.types import Finding, ImageRecord, Instance, Severity
from instseg.errors import DatasetError
from instseg.io import atomic_write_text

BOX_ONLY_KEY = "instseg_box_only"  # annotation flag: the segmentation is only the box (a YOLO 5-value line)


@dataclass
class CocoDataset:
    """A COCO JSON read into instseg's records.

    ``category_ids[k]`` is the COCO category id of class index ``k`` (``names[k]``); class indices are
    contiguous and follow category-id order (or the order instseg wrote). ``annotation_ids[i][n]`` is the
    COCO annotation id of ``records[i].instances[n]``.
    """

    json_path: Path
    images_dir: Path
    records: list[ImageRecord]
    names: list[str]
    category_ids: list[int]
    annotation_ids: list[list[int]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def write_json_atomic(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as compact JSON to ``path`` via a temporary file and a rename (never half-written)."""
    # json.dumps uses the C encoder; json.dump does not
    return atomic_write_text(path, json.dumps(obj, separators=(",", ":")))


def read_json(path: Path) -> dict:
    """Load a JSON object, turning I/O and syntax errors into ``DatasetError`` with file:line:column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DatasetError(f"{path}: file not found; check the path") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot be read ({e})") from e
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{path}:{e.lineno}:{e.colno}: invalid JSON ({e.msg}); fix the file or re-export it"
        ) from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a JSON object with 'images', 'annotations', 'categories'")
    return obj


def _categories(path: Path, data: dict) -> tuple[list[str], list[int]]:
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise DatasetError(f"{path}: no 'categories' list; a COCO file needs [{{'id': 1, 'name': ...}}, ...]")
    by_id: dict[int, str] = {}
    for k, cat in enumerate(cats):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or "name" not in cat:
            raise DatasetError(
                f"{path}: categories[{k}] needs an integer 'id' and a 'name', got {str(cat)[:80]}"
            )
        if cat["id"] in by_id:
            raise DatasetError(
                f"{path}: category id {cat['id']} appears twice ({by_id[cat['id']]!r}, {cat['name']!r})"
            )
        by_id[cat["id"]] = str(cat["name"])
    meta = data.get("info", {}).get("instseg", {}) if isinstance(data.get("info"), dict) else {}
    written = meta.get("category_ids") if isinstance(meta, dict) else None
    if isinstance(written, list) and sorted(written) == sorted(by_id):
        ids = [int(i) for i in written]  # the class order instseg wrote
    else:
        ids = sorted(by_id)
    return [by_id[i] for i in ids], ids


MAX_SIDE = 65_535  # larger than any real image (JPEG's own limit); a bigger width/height is a broken file


def _resolve_image(images_dir: Path, file_name: str) -> Path:
    path = images_dir / file_name
    try:
        exists = path.exists()
    except OSError:  # a component longer than the file system allows
        exists = False
    if not exists and len(Path(file_name).name) < 256:
        alt = images_dir / Path(file_name).name  # exports often keep a folder prefix that was not shipped
        if alt.exists():
            return alt
    return path


def _parse_segmentation(
    seg: object, h: int, w: int, where: str, path: Path, findings: list[Finding]
) -> tuple[list[np.ndarray], dict | None, bool]:
    """(polygons, rle, usable); ``usable`` False means the annotation must be skipped."""
    if isinstance(seg, dict):
        try:
            rle = normalize_rle(seg)
        except (ValueError, TypeError) as e:
            findings.append(
                Finding(Severity.ERROR, "bad-rle", f"{where}: {e}", path, action="annotation skipped")
            )
            return [], None, False
        if rle["size"] != [h, w]:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "rle-size-mismatch",
                    f"{where}: RLE size {rle['size']} (h, w) does not match the image's [{h}, {w}]",
                    path,
                    action="annotation skipped; re-export the mask at the image's size",
                )
            )
            return [], None, False
        return [], rle, True
    polygons: list[np.ndarray] = []
    if isinstance(seg, list):
        for k, flat in enumerate(seg):
            ok = isinstance(flat, list) and all(isinstance(v, (int, float)) for v in flat)
            if not ok or len(flat) < 6 or len(flat) % 2:
                n = len(flat) if isinstance(flat, list) else type(flat).__name__
                findings.append(
                    Finding(
                        Severity.WARNING,
                        "bad-polygon",
                        f"{where}: polygon {k} has {n} coordinates (needs an even number, at least 6)",
                        path,
                        action="polygon dropped",
                    )
                )
                continue
            polygons.append(np.asarray(flat, np.float64).reshape(-1, 2))
    elif seg is not None:
        findings.append(
            Finding(
                Severity.ERROR,
                "bad-segmentation",
                f"{where}: segmentation must be a list of polygons or an RLE dict, not {type(seg).__name__}",
                path,
                action="annotation skipped",
            )
        )
        return [], None, False
    return polygons, None, True


def _key(value: object) -> object:
    """An id usable as a dict key (unhashable ids, e.g. lists, never match anything)."""
    return value if isinstance(value, (int, str)) else None


def _read_images(
    path: Path, data: dict, images_dir: Path, findings: list[Finding]
) -> tuple[list[ImageRecord], dict[object, int]]:
    images = data.get("images")
    if not isinstance(images, list):
        raise DatasetError(
            f"{path}: no 'images' list; a COCO file needs [{{'id', 'file_name', 'width', 'height'}}]"
        )
    records: list[ImageRecord] = []
    by_image: dict[object, int] = {}
    for k, img in enumerate(images):
        try:
            image_id, file_name = img["id"], img["file_name"]
            width, height = int(img["width"]), int(img["height"])
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise DatasetError(
                f"{path}: images[{k}] needs 'id', 'file_name', 'width' and 'height' ({e!r} missing or bad)"
            ) from e
        if not isinstance(file_name, str) or not file_name.strip() or len(file_name) > 1024 or "\0" in file_name:
            raise DatasetError(f"{path}: images[{k}] has file_name {str(file_name)[:60]!r}; it must be the "
                               "image's path relative to the images folder (a string)")
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise DatasetError(f"{path}: images[{k}] is {width}x{height}; width and height must be 1..{MAX_SIDE}")
        if _key(image_id) is None:
            raise DatasetError(f"{path}: images[{k}] has id {image_id!r}; image ids must be integers")
        if image_id in by_image:
            raise DatasetError(
                f"{path}: image id {image_id} appears twice (images[{by_image[image_id]}] and [{k}])"
            )
        by_image[image_id] = len(records)
        image_path = _resolve_image(images_dir, file_name)
        try:
            found = image_path.is_file()
        except OSError:  # a name longer than the file system allows: not there
            found = False
        if not found:
            findings.append(
                Finding(
                    Severity.WARNING,
                    "image-not-found",
                    f"image id {image_id}: {image_path} does not exist",
                    path,
                    action="its annotations are kept; pass --images with the folder holding the images",
                )
            )
        records.append(
            ImageRecord(path=image_path, width=width, height=height, label_path=path, image_id=image_id)
        )
    return records, by_image


def _box(raw: object) -> np.ndarray | None:
    """COCO ``[x, y, w, h]`` -> ``xyxy`` (None when absent or malformed)."""
    if isinstance(raw, list) and len(raw) == 4 and all(isinstance(v, (int, float)) for v in raw):
        x, y, w, h = (float(v) for v in raw)
        return np.array([x, y, x + w, y + h], np.float64)
    return None


def _read_annotation(
    ann: object,
    k: int,
    path: Path,
    records: list[ImageRecord],
    by_image: dict,
    cat_index: dict,
    findings: list[Finding],
) -> tuple[int, Instance] | None:
    """(index of its image, instance), or None when the annotation is skipped (with a finding)."""
    aid = ann.get("id", f"#{k}") if isinstance(ann, dict) else f"#{k}"
    where = f"annotation id {aid}"

    def skip(code: str, message: str) -> None:
        findings.append(
            Finding(Severity.ERROR, code, f"{where}: {message}", path, action="annotation skipped")
        )

    if not isinstance(ann, dict):
        return skip("bad-annotation", "not a JSON object")
    if _key(ann.get("image_id")) not in by_image:
        return skip("unknown-image", f"image_id {ann.get('image_id')} is not in 'images'")
    if _key(ann.get("category_id")) not in cat_index:
        return skip(
            "unknown-category",
            f"category_id {ann.get('category_id')} is not in 'categories' {list(cat_index)}",
        )
    index = by_image[ann["image_id"]]
    rec = records[index]
    polygons, rle, usable = _parse_segmentation(
        ann.get("segmentation"), rec.height, rec.width, where, path, findings
    )
    if not usable:
        return None
    bbox = _box(ann.get("bbox"))
    if ann.get(BOX_ONLY_KEY) and bbox is not None:
        polygons, rle = [], None
    if not polygons and rle is None and bbox is None:
        return skip("no-geometry", "no usable segmentation and no bbox")
    inst = Instance(
        cls=cat_index[ann["category_id"]],
        polygons=polygons,
        rle=rle,
        bbox=bbox,
        iscrowd=bool(ann.get("iscrowd", 0)),
    )
    return index, inst


def load_coco(json_path: str | Path, images_dir: str | Path | None = None) -> CocoDataset:
    """Read a COCO instance JSON. ``images_dir`` is where ``file_name`` s are found (default: the folder
    instseg recorded when it wrote the file, else the JSON's folder).

    Annotations pointing at unknown images or categories, broken polygons or RLEs of the wrong size are
    reported in ``findings`` (with the annotation id) and skipped. Annotations without a usable mask but with
    a box become box-only instances. Image sizes are the JSON's ``width``/``height`` (the geometry's frame).
    """
    path = Path(json_path)
    data = read_json(path)
    names, category_ids = _categories(path, data)
    cat_index = {cid: k for k, cid in enumerate(category_ids)}
    findings: list[Finding] = []
    if images_dir is None:
        meta = data.get("info", {}).get("instseg", {}) if isinstance(data.get("info"), dict) else {}
        written = meta.get("images_dir") if isinstance(meta, dict) else None
        images_dir = Path(written) if written and Path(written).is_dir() else path.parent
    images_dir = Path(images_dir)
    records, by_image = _read_images(path, data, images_dir, findings)
    ann_ids: list[list[int]] = [[] for _ in records]
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise DatasetError(f"{path}: 'annotations' must be a list")
    for k, ann in enumerate(annotations):
        got = _read_annotation(ann, k, path, records, by_image, cat_index, findings)
        if got is not None:
            index, inst = got
            records[index].instances.append(inst)
            ann_ids[index].append(ann["id"] if isinstance(ann.get("id"), int) else -1)
    return CocoDataset(path, images_dir, records, names, category_ids, ann_ids, findings)


def instance_bbox(inst: Instance, rle: dict, height: int, width: int) -> np.ndarray:
    """``xyxy`` box from the geometry, clipped to the image: the polygon vertices' extent, the RLE's tight
    box, or the given box for a box-only instance."""
    if inst.polygons:
        return polygons_bbox(inst.polygons, height, width)
    if inst.rle is not None:
        return rle_to_bbox(rle)
    assert inst.bbox is not None  # instance_to_rle has raised already for an instance without any geometry
    return np.clip(np.asarray(inst.bbox, np.float64), 0, [width, height, width, height])


def _file_name(path: Path, image_root: Path | None) -> str:
    if image_root is not None:
        try:
            return Path(os.path.relpath(path, image_root)).as_posix()
        except ValueError:  # another drive on Windows
            pass
    return path.name


def records_to_coco(
    records: Sequence[ImageRecord],
    names: Sequence[str],
    category_ids: Sequence[int] | None = None,
    *,
    image_root: str | Path | None = None,
) -> dict:
    """Build a COCO instance-segmentation dict from records (valid for pycocotools and COCOeval).

    * image ids: the records' ``image_id`` when every record has a distinct one, else 1..N in order;
    * annotation ids 1..M in order; category ids ``category_ids`` (default ``index + 1``);
    * ``bbox`` ``[x, y, w, h]`` from the geometry clipped to the image, ``area`` = rasterized mask pixels;
    * ``segmentation``: flattened polygons for polygon instances, compressed RLE for mask instances, the box
      as a polygon for box-only instances (flagged ``instseg_box_only`` so they convert back to box lines);
    * ``file_name`` relative to ``image_root`` (default: the bare file name).
    """
    ids = list(category_ids) if category_ids is not None else list(range(1, len(names) + 1))
    if len(ids) != len(names) or len(set(ids)) != len(ids):
        raise ValueError(f"category_ids {ids} must be {len(names)} distinct ids, one per name")
    given = [r.image_id for r in records]
    keep_ids = all(isinstance(i, int) for i in given) and len(set(given)) == len(given)
    root = Path(image_root) if image_root is not None else None
    images, annotations = [], []
    for n, rec in enumerate(records):
        image_id = int(rec.image_id) if keep_ids else n + 1  # type: ignore[arg-type]
        images.append(
            {
                "id": image_id,
                "file_name": _file_name(rec.path, root),
                "width": int(rec.width),
                "height": int(rec.height),
            }
        )
        for inst in rec.instances:
            if not 0 <= inst.cls < len(names):
                raise ValueError(f"{rec.path}: class {inst.cls} is outside names (nc={len(names)})")
            rle = instance_to_rle(inst, rec.height, rec.width)
            x1, y1, x2, y2 = (float(v) for v in instance_bbox(inst, rle, rec.height, rec.width))
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(ids[inst.cls]),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": rle_area(rle),
                "iscrowd": int(inst.iscrowd),
            }
            if inst.polygons:
                ann["segmentation"] = [
                    np.asarray(p, np.float64).ravel().tolist() for p in inst.polygons if len(p) >= 3
                ]
            elif inst.rle is not None:
                ann["segmentation"] = rle
            else:
                ann["segmentation"] = [[x1, y1, x2, y1, x2, y2, x1, y2]]
                ann[BOX_ONLY_KEY] = True
            annotations.append(ann)
    info = {
        "description": "written by instseg",
        "instseg": {
            "names": list(names),
            "category_ids": ids,
            **({"images_dir": str(root.resolve())} if root is not None else {}),
        },
    }
    categories = [{"id": int(cid), "name": str(name), "supercategory": ""} for name, cid in zip(names, ids)]
    return {
        "info": info,
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
