"""Hypothesis strategies for hostile label files: valid documents with fields swapped for garbage.

A purely random input rarely gets past the first check, so every strategy starts from a *valid* document
and mutates it (a field replaced by any JSON value, a number made huge, negative, NaN or a string, a token
dropped, bytes that are not UTF-8), which reaches the deep branches of each parser.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# examples per parser: the fast set runs FAST in all (about 2,000), the slow set SLOW (about 100,000)
PARSERS = 8
FAST = int(os.environ.get("INSTSEG_FUZZ_FAST", 2000)) // PARSERS
SLOW = int(os.environ.get("INSTSEG_FUZZ_SLOW", 100_000)) // PARSERS


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=n <= FAST, database=None,
                    suppress_health_check=list(HealthCheck))


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
    st.floats(0, 1), st.floats(-0.1, 1.1), st.sampled_from([0, 1, -1, 0.5, 1e308, -1e308, 2**63, 2**64 + 1]))
json_scalars = st.one_of(st.none(), st.booleans(), numbers.filter(lambda v: v == v and abs(v) != float("inf")),
                         st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda c: st.one_of(st.lists(c, max_size=5),
                                                            st.dictionaries(st.text(max_size=8), c, max_size=4)),
                           max_leaves=12)


def mutate_dict(base: dict, draw) -> dict:
    """``base`` with some keys replaced by any JSON value, some removed, some added."""
    out = dict(base)
    for key in list(out):
        r = draw(st.integers(0, 9))
        if r == 0:
            del out[key]
        elif r == 1:
            out[key] = draw(json_values)
    if draw(st.integers(0, 5)) == 0:
        out[draw(st.text(max_size=6))] = draw(json_values)
    return out


@st.composite
def yolo_text(draw) -> str:
    """A YOLO label file: polygon and box lines, mutated tokens, odd whitespace and comments."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        cls = draw(st.one_of(st.integers(-2, 5).map(str), st.sampled_from(["1.0", "1.5", "a", "", "0x1", "1e3",
                                                                          "-0", "٣"])))
        n = draw(st.sampled_from([4, 6, 8, 3, 5, 0, 1, 2, 7, 40]))
        vals = [draw(st.one_of(st.floats(0, 1).map(repr), numbers.map(str),
                               st.sampled_from(["nan", "inf", "-inf", "1e-400", "", "0.5.5", "1,5"])))
                for _ in range(n)]
        sep = draw(st.sampled_from([" ", "\t", "  ", " \u00a0", ","]))
        lines.append(sep.join([cls, *vals]))
    if draw(st.booleans()):
        lines.insert(0, draw(st.text(max_size=20)))
    end = draw(st.sampled_from(["\n", "\r\n", "\r", ""]))
    return end.join(lines)


@st.composite
def jsonl_text(draw) -> str:
    """A .jsonl instance file: one object per line, valid then mutated, plus broken JSON lines."""
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["polygon", "polygons", "rle", "bbox", "mask_path", "garbage"]))
        base: dict = {"class": draw(st.integers(-1, 3))}
        if kind == "polygon":
            base["polygon"] = [[draw(st.floats(-5, 70)), draw(st.floats(-5, 50))] for _ in range(draw(st.integers(0, 6)))]
        elif kind == "polygons":
            base["polygons"] = [[[1, 1], [20, 1], [20, 20]], draw(json_values)]
        elif kind == "rle":
            base["rle"] = draw(rle_objects())
        elif kind == "bbox":
            base["bbox"] = [draw(numbers) for _ in range(draw(st.sampled_from([4, 3, 5])))]
        elif kind == "mask_path":
            base["mask_path"] = draw(st.sampled_from(["../../etc/passwd", "/dev/zero", "nope.png", "", "."]))
        line = json.dumps(mutate_dict(base, draw)) if kind != "garbage" else draw(st.text(max_size=30))
        if draw(st.integers(0, 8)) == 0:
            line = line[: draw(st.integers(0, len(line)))]
        lines.append(line)
    return "\n".join(lines)


@st.composite
def rle_objects(draw, h: int = 40, w: int = 60):
    """COCO RLEs: valid compressed/uncompressed ones, then wrong sizes, broken strings, bad count lists."""
    size = draw(st.one_of(st.just([h, w]), st.lists(st.integers(-3, 100), max_size=3), json_values))
    counts = draw(st.one_of(
        st.just([h * w]), st.just([10, h * w - 20, 10]), st.lists(st.integers(-5, 3000), max_size=8),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        st.text(max_size=10), st.sampled_from(["", "0", "PPYo1", "\x7f\x7f\x7f", "a" * 200]), json_values))
    obj = {"size": size, "counts": counts}
    return mutate_dict(obj, draw) if draw(st.integers(0, 4)) == 0 else obj


@st.composite
def coco_doc(draw) -> dict:
    """A COCO instance JSON (2 images, a few annotations), every level mutated."""
    images = [mutate_dict({"id": k, "file_name": f"img{k}.png", "width": 60, "height": 40}, draw) for k in (1, 2)]
    cats = [mutate_dict({"id": c, "name": f"c{c}", "supercategory": "x"}, draw) for c in (1, 3)]
    anns = []
    for a in range(draw(st.integers(0, 5))):
        seg = draw(st.one_of(st.just([[2, 2, 30, 2, 30, 20, 2, 20]]), rle_objects(),
                             st.lists(st.lists(numbers, max_size=10), max_size=3), json_values))
        anns.append(mutate_dict({"id": a + 1, "image_id": draw(st.sampled_from([1, 2, 3, "1", None])),
                                 "category_id": draw(st.sampled_from([1, 3, 2, 0, "1"])), "iscrowd": 0,
                                 "bbox": [2, 2, 28, 18], "area": 500, "segmentation": seg}, draw))
    doc = {"images": images, "annotations": anns, "categories": cats}
    return mutate_dict(doc, draw) if draw(st.integers(0, 6)) == 0 else doc


@st.composite
def labelme_doc(draw) -> dict:
    shapes = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["polygon", "rectangle", "circle", "mask", "line", "point", None, "x"]))
        pts = [[draw(numbers), draw(numbers)] for _ in range(draw(st.integers(0, 5)))]
        shape = {"label": draw(st.sampled_from(["a", "b", 1, None, ""])), "points": pts, "shape_type": kind,
                 "group_id": draw(st.sampled_from([None, 1, 2, "g", []])),
                 "mask": draw(st.sampled_from([None, "", "!!!", "iVBORw0KGgo=", "AAAA"]))}
        shapes.append(mutate_dict(shape, draw))
    doc = {"version": "5.4.1", "shapes": shapes, "imagePath": "img.png", "imageData": None,
           "imageHeight": draw(st.sampled_from([40, 0, -1, 40.0, "40", 10**9])), "imageWidth": 60}
    return mutate_dict(doc, draw) if draw(st.integers(0, 4)) == 0 else doc


@st.composite
def data_yaml_text(draw) -> str:
    import yaml

    doc = {"path": draw(st.sampled_from([".", "..", "/nonexistent", "", None, 3])),
           "train": draw(st.sampled_from(["images/train", "train.txt", "../x", ["images/train", "nope"], None, 5])),
           "val": draw(st.sampled_from(["images/train", "", None, []])),
           "names": draw(st.one_of(st.just(["a", "b"]), st.just({0: "a", 1: "b"}), st.just({0: "a", 2: "c"}),
                                   st.just({"0": "a"}), json_values)),
           "nc": draw(st.sampled_from([2, 0, -1, "2", 2.5, None]))}
    doc = mutate_dict(doc, draw)
    text = yaml.safe_dump(doc, allow_unicode=True)
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from(["", ":", "[", "a: b: c", "- 1\n- 2", "!!python/object:os.system x",
                                     "names: &a [*a]", "\t- x", "%YAML 9.9\n---\n"])) + text
    return text


@st.composite
def results_doc(draw) -> list:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        res = {"image_id": draw(st.sampled_from([1, 2, 99, "1", None])), "category_id": draw(st.sampled_from([1, 3, 7])),
               "score": draw(numbers), "bbox": [draw(numbers) for _ in range(draw(st.sampled_from([4, 3])))],
               "segmentation": draw(st.one_of(rle_objects(), st.just([[2, 2, 30, 2, 30, 20]]), json_values))}
        out.append(mutate_dict(res, draw))
    return out if draw(st.integers(0, 8)) else draw(json_values)
