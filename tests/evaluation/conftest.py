"""Ground truths and perturbed predictions for the evaluator tests.

Real ground truth: the car-damage COCO JSONs (human polygons, 1024x1024, category ids from 1, annotation ids
from 0). Predictions are made from it by perturbing the ground-truth masks with a fixed seed.
"""

from __future__ import annotations

import copy
import json

import cv2
import numpy as np
import pycocotools.mask as mask_api
import pytest

PERTURBATIONS = ("exact", "shift", "morph", "miss_fp", "ties", "wrong_class", "mixed")


def load_car_gt(root, split: str = "val", multi: bool = True) -> dict:
    name = f"COCO_mul_{split}_annos.json" if multi else f"COCO_{split}_annos.json"
    with open(root / split / name) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def car_val_gt(car_damage_coco) -> dict:
    """car-damage val, 5 part classes: 11 images, 38 polygons."""
    return load_car_gt(car_damage_coco, "val")


@pytest.fixture(scope="session")
def car_train_gt(car_damage_coco) -> dict:
    """car-damage train, 1 class "damage": 59 images, 140 polygons."""
    return load_car_gt(car_damage_coco, "train", multi=False)


def gt_mask(ann: dict, height: int, width: int) -> np.ndarray:
    seg = ann["segmentation"]
    if isinstance(seg, list):
        rle = mask_api.merge(mask_api.frPyObjects(seg, height, width))
    elif isinstance(seg["counts"], list):
        rle = mask_api.frPyObjects(seg, height, width)
    else:
        rle = seg
    return mask_api.decode(rle)


def encode(mask: np.ndarray) -> dict:
    rle = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _morph(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius == 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
    return (cv2.dilate if radius > 0 else cv2.erode)(mask, kernel)


def perturbed_results(gt: dict, kind: str, seed: int = 0) -> list[dict]:
    """COCO results derived from ``gt`` by one kind of perturbation (see :data:`PERTURBATIONS`)."""
    rng = np.random.default_rng(seed)
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    cat_ids = [c["id"] for c in gt["categories"]]
    out: list[dict] = []
    for ann in gt["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        h, w = sizes[ann["image_id"]]
        mask = gt_mask(ann, h, w)
        x, y, bw, bh = (float(v) for v in ann["bbox"])
        cat, score = ann["category_id"], float(rng.random())
        if kind in ("miss_fp", "mixed") and rng.random() < 0.3:
            continue  # a missed instance
        if kind in ("shift", "mixed", "ties"):  # ties: shifted masks, scores in {0, .25, .5, .75}
            dx, dy = (int(v) for v in rng.integers(-12, 13, size=2))
            mask = _shift(mask, dx, dy)
            x, y = x + dx + rng.normal(0, 3), y + dy + rng.normal(0, 3)
            bw, bh = bw * rng.uniform(0.85, 1.15), bh * rng.uniform(0.85, 1.15)
        if kind in ("morph", "mixed"):
            mask = _morph(mask, int(rng.integers(-6, 7)))
        if kind == "ties":
            score = float(rng.integers(0, 4)) / 4
        if kind in ("wrong_class", "mixed") and rng.random() < 0.25:
            cat = int(rng.choice(cat_ids))
        out.append(
            {
                "image_id": ann["image_id"],
                "category_id": cat,
                "score": score,
                "bbox": [x, y, bw, bh],
                "segmentation": encode(mask),
            }
        )
        if kind in ("miss_fp", "mixed") and rng.random() < 0.3:  # a duplicate, lower score
            dup = copy.deepcopy(out[-1])
            dup["score"] = score * 0.5
            out.append(dup)
    if kind in ("miss_fp", "mixed"):
        for _ in range(3 * len(gt["images"])):  # false positives: random rectangles
            img = gt["images"][int(rng.integers(len(gt["images"])))]
            h, w = img["height"], img["width"]
            bw, bh = (int(v) for v in rng.integers(8, max(9, min(h, w) // 3), size=2))
            x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            m = np.zeros((h, w), np.uint8)
            m[y0 : y0 + bh, x0 : x0 + bw] = 1
            out.append(
                {
                    "image_id": img["id"],
                    "category_id": int(rng.choice(cat_ids)),
                    "score": float(rng.random()) * 0.8,
                    "bbox": [x0, y0, bw, bh],
                    "segmentation": encode(m),
                }
            )
    return out


def with_crowd_and_empty_images(gt: dict) -> dict:
    """A copy of ``gt`` where every 4th annotation is a crowd region (uncompressed RLE, as COCO writes
    crowds) and two images without any annotation are added."""
    out = copy.deepcopy(gt)
    sizes = {im["id"]: (im["height"], im["width"]) for im in out["images"]}
    for i, ann in enumerate(out["annotations"]):
        if i % 4 == 1:
            h, w = sizes[ann["image_id"]]
            mask = _morph(gt_mask(ann, h, w), 3)
            ann["iscrowd"] = 1
            ann["segmentation"] = uncompressed_rle(mask)
            ann["area"] = float(mask.sum())
    next_id = max(sizes) + 1
    h, w = out["images"][0]["height"], out["images"][0]["width"]
    for k in range(2):
        out["images"].append({"id": next_id + k, "file_name": f"empty_{k}.jpg", "height": h, "width": w})
    return out


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (``counts`` a list of run lengths, column-major, starting with zeros)."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": runs}
