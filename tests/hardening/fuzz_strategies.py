"""Hypothesis strategies for hostile label files: valid documents with fields swapped for garbage.

A purely random input rarely gets past the first check, so every strategy starts from a *valid* document
and mutates it (a field replaced by any JSON value, a number made huge, negative, NaN or a string, a token
dropped or cut, bytes that are not UTF-8), which reaches the deep branches of each parser. The documents
are built from one hypothesis-drawn ``random.Random`` (cheap: ~100,000 inputs run in minutes, and the
fast set is reproducible with ``derandomize``).
"""

from __future__ import annotations

import json
import math
import os
import random
from contextlib import contextmanager

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# examples per parser: the fast set runs FAST in all (about 2,000), the slow set SLOW (about 100,000)
PARSERS = 8
FAST = int(os.environ.get("INSTSEG_FUZZ_FAST", 2000)) // PARSERS
SLOW = int(os.environ.get("INSTSEG_FUZZ_SLOW", 100_000)) // PARSERS


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=n <= FAST, database=None,
                    suppress_health_check=list(HealthCheck))


@contextmanager
def global_constants_only():
    """Hypothesis mixes into its draws constants it reads from the source of every *local* module in
    sys.modules (instseg's and the tests'), so what a derandomized set generates depends on what the tests
    before it imported: the fast labelme set passed alone and drew other inputs (and failed) after
    test_disk_full, which imports the engine. While this is active only hypothesis' own constants are used,
    so the fast sets are the same inputs in any order. (Private hypothesis API: if it moves, this raises.)"""
    from hypothesis.internal.conjecture import providers

    saved = providers._get_local_constants
    providers.CONSTANTS_CACHE.cache.clear()  # holds (global, local) constants per kind of draw
    providers._get_local_constants = lambda: providers.Constants()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


ODD_NUMBERS = [0, 1, -1, 0.5, 1e308, -1e308, 2**63, 2**64 + 1, -(2**70), 1e-320, 0.999999, 1.000001, -0.0]
ODD_TEXT = ["", " ", "a", "0", "1.5", "nan", "inf", "-inf", "1e400", "٣", "\u00a0", "\x00", "..", "../x",
            "/etc/passwd", "\ud800", "x" * 300, "1,5", "0x1f", "null", "[]", "{}"]


def number(r: random.Random):
    k = r.randrange(6)
    if k == 0:
        return r.choice(ODD_NUMBERS)
    if k == 1:
        return r.randint(-5, 100)
    if k == 2:
        return r.choice([math.nan, math.inf, -math.inf])
    return r.uniform(-0.2, 1.2) if k == 3 else r.uniform(0, 60)


def text(r: random.Random) -> str:
    if r.random() < 0.5:
        return r.choice(ODD_TEXT)
    return "".join(chr(r.choice([r.randrange(32, 127), r.randrange(0, 0x3000)])) for _ in range(r.randrange(8)))


def json_value(r: random.Random, depth: int = 0):
    k = r.randrange(7 if depth < 2 else 4)
    if k == 0:
        return None
    if k == 1:
        return r.choice([True, False])
    if k == 2:
        v = number(r)
        return v if isinstance(v, int) or math.isfinite(v) else 0.5
    if k == 3:
        return text(r)
    if k in (4, 5):
        return [json_value(r, depth + 1) for _ in range(r.randrange(4))]
    return {text(r): json_value(r, depth + 1) for _ in range(r.randrange(3))}


def mutate(base: dict, r: random.Random, rate: float = 0.12) -> dict:
    """``base`` with some keys replaced by any JSON value, some removed, sometimes one added."""
    out = dict(base)
    for key in list(out):
        x = r.random()
        if x < rate / 2:
            del out[key]
        elif x < rate:
            out[key] = json_value(r)
    if r.random() < 0.1:
        out[text(r)] = json_value(r)
    return out


def _cut(s: str, r: random.Random) -> str:
    return s[: r.randrange(len(s) + 1)] if s and r.random() < 0.08 else s


def rle(r: random.Random, h: int = 40, w: int = 60) -> dict:
    """COCO RLEs: valid compressed/uncompressed ones, then wrong sizes, broken strings, bad count lists."""
    from instseg.data.masks import mask_to_rle

    import numpy as np

    k = r.randrange(8)
    size = [h, w] if r.random() < 0.8 else r.choice([[h], [w, h], [-1, w], [h, w, 1], None, "40x60", [h + 0.5, w]])
    if k <= 2:
        m = np.zeros((h, w), np.uint8)
        y, x = r.randrange(h), r.randrange(w)
        m[y : y + r.randrange(1, 20), x : x + r.randrange(1, 30)] = 1
        counts = mask_to_rle(m)["counts"]
        if k == 1:  # flip or drop a character
            i = r.randrange(len(counts))
            counts = counts[:i] + chr(r.randrange(40, 120)) + counts[i + 1 :] if r.random() < 0.5 else counts[:i]
    elif k == 3:
        counts = [h * w] if r.random() < 0.5 else [10, h * w - 20, 10]
    elif k == 4:
        counts = [r.randint(-5, 3000) for _ in range(r.randrange(8))]
    elif k == 5:
        counts = "".join(chr(r.randrange(32, 127)) for _ in range(r.randrange(40)))
    else:
        counts = json_value(r)
    obj = {"size": size, "counts": counts}
    return mutate(obj, r) if r.random() < 0.2 else obj


def _polygon(r: random.Random) -> list:
    return [[r.uniform(-5, 70), r.uniform(-5, 50)] for _ in range(r.randrange(8))]


@st.composite
def yolo_text(draw) -> str:
    """A YOLO label file: polygon and box lines, mutated tokens, odd whitespace and line ends."""
    r = draw(st.randoms(use_true_random=False))
    lines = []
    for _ in range(r.randrange(7)):
        cls = str(r.randint(-2, 5)) if r.random() < 0.8 else r.choice(["1.0", "1.5", "a", "0x1", "1e3", "-0", "٣"])
        n = r.choice([4, 6, 8, 10, 3, 5, 0, 1, 2, 7, 40])
        vals = [repr(r.random()) if r.random() < 0.85 else
                (str(number(r)) if r.random() < 0.5 else r.choice(ODD_TEXT)) for _ in range(n)]
        sep = r.choice([" ", " ", "\t", "  ", " \u00a0", ","])
        lines.append(_cut(sep.join([cls, *vals]), r))
    if r.random() < 0.1:
        lines.insert(r.randrange(len(lines) + 1), text(r))
    if lines and r.random() < 0.1:
        lines.append(lines[0])  # a duplicate line
    return r.choice(["\n", "\n", "\r\n", "\r"]).join(lines)


@st.composite
def jsonl_text(draw) -> str:
    """A .jsonl instance file: one object per line, valid then mutated, plus broken JSON lines."""
    r = draw(st.randoms(use_true_random=False))
    lines = []
    for _ in range(r.randrange(6)):
        kind = r.choice(["polygon", "polygon", "polygons", "rle", "bbox", "mask_path", "garbage"])
        base: dict = {"class": r.randint(-1, 3)}
        if kind == "polygon":
            base["polygon"] = _polygon(r) if r.random() < 0.7 else [v for p in _polygon(r) for v in p]
        elif kind == "polygons":
            base["polygons"] = [[[1, 1], [20, 1], [20, 20]], _polygon(r)]
        elif kind == "rle":
            base["rle"] = rle(r)
        elif kind == "bbox":
            base["bbox"] = [number(r) for _ in range(r.choice([4, 4, 3, 5]))]
        elif kind == "mask_path":
            base["mask_path"] = r.choice(["../../etc/passwd", "/dev/zero", "nope.png", "", ".", "/"])
        if r.random() < 0.2:
            base["iscrowd"] = json_value(r)
        line = json.dumps(mutate(base, r)) if kind != "garbage" else text(r)
        lines.append(_cut(line, r))
    return "\n".join(lines)


@st.composite
def rle_objects(draw):
    return rle(draw(st.randoms(use_true_random=False)))


@st.composite
def coco_doc(draw) -> dict:
    """A COCO instance JSON (2 images, a few annotations), every level mutated."""
    r = draw(st.randoms(use_true_random=False))
    images = [mutate({"id": k, "file_name": f"img{k}.png", "width": 60, "height": 40}, r, 0.06) for k in (1, 2)]
    cats = [mutate({"id": c, "name": f"c{c}", "supercategory": "x"}, r, 0.06) for c in (1, 3)]
    anns = []
    for a in range(r.randrange(6)):
        k = r.randrange(5)
        seg = ([[2, 2, 30, 2, 30, 20, 2, 20]] if k == 0 else rle(r) if k == 1 else
               [[number(r) for _ in range(r.randrange(10))] for _ in range(r.randrange(3))] if k == 2 else
               [[v for p in _polygon(r) for v in p]] if k == 3 else json_value(r))
        anns.append(mutate({"id": r.choice([a + 1, a + 1, 0, 1, "x"]), "image_id": r.choice([1, 2, 2, 3, "1", None]),
                            "category_id": r.choice([1, 3, 3, 2, 0, "1"]), "iscrowd": r.choice([0, 0, 0, 1, True]),
                            "bbox": [2, 2, 28, 18] if r.random() < 0.8 else [number(r) for _ in range(4)],
                            "area": 500, "segmentation": seg}, r))
    doc = {"images": images, "annotations": anns, "categories": cats}
    return mutate(doc, r, 0.1) if r.random() < 0.15 else doc


@st.composite
def labelme_doc(draw) -> dict:
    import base64

    r = draw(st.randoms(use_true_random=False))
    shapes = []
    for _ in range(r.randrange(5)):
        kind = r.choice(["polygon", "polygon", "rectangle", "circle", "mask", "line", "point", None, "x"])
        pts = ([[r.uniform(-5, 70), r.uniform(-5, 50)] for _ in range(r.randrange(6))] if r.random() < 0.8
               else [[number(r), number(r)] for _ in range(r.randrange(4))])
        mask = r.choice([None, "", "!!!", "iVBORw0KGgo=", "AAAA", base64.b64encode(PNG_4x3).decode()])
        shapes.append(mutate({"label": r.choice(["a", "b", "a", 1, None, ""]), "points": pts, "shape_type": kind,
                              "group_id": r.choice([None, None, 1, 2, "g", []]), "mask": mask}, r))
    doc = {"version": "5.4.1", "shapes": shapes, "imagePath": "img.png", "imageData": None,
           "imageHeight": r.choice([40, 40, 40, 0, -1, 40.0, "40", 10**9]), "imageWidth": 60}
    return mutate(doc, r) if r.random() < 0.2 else doc


def _png_4x3() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".png", np.full((3, 4), 255, np.uint8))[1].tobytes()


PNG_4x3 = _png_4x3()


@st.composite
def data_yaml_text(draw) -> str:
    import yaml

    r = draw(st.randoms(use_true_random=False))
    doc = {"path": r.choice([".", "..", "/nonexistent", "", None, 3]),
           "train": r.choice(["images/train", "train.txt", "../x", ["images/train", "nope"], None, 5]),
           "val": r.choice(["images/train", "", None, []]),
           "names": r.choice([["a", "b"], {0: "a", 1: "b"}, {0: "a", 2: "c"}, {"0": "a"}, ["a", "a"], [1, None],
                              json_value(r)]),
           "nc": r.choice([2, 2, 0, -1, "2", 2.5, None])}
    text_ = yaml.safe_dump(mutate(doc, r), allow_unicode=True)
    if r.random() < 0.15:
        text_ = r.choice(["", ":", "[", "a: b: c", "- 1\n- 2", "!!python/object/apply:os.system ['true']\n",
                          "names: &a [*a]\n", "\t- x", "%YAML 9.9\n---\n", "\x00"]) + text_
    return _cut(text_, r)


@st.composite
def results_doc(draw) -> object:
    r = draw(st.randoms(use_true_random=False))
    out = []
    for _ in range(r.randrange(5)):
        k = r.randrange(4)
        seg = rle(r) if k < 2 else [[2, 2, 30, 2, 30, 20]] if k == 2 else json_value(r)
        out.append(mutate({"image_id": r.choice([1, 2, 2, 99, "1", None]), "category_id": r.choice([1, 3, 3, 7]),
                           "score": number(r), "bbox": [number(r) for _ in range(r.choice([4, 4, 3]))],
                           "segmentation": seg}, r))
    return out if r.random() < 0.9 else json_value(r)
