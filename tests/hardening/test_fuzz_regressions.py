"""Each crash the fuzzer found, kept as a plain test (the input, and the instseg error that replaces it)."""

from __future__ import annotations

import json

import pytest

from instseg.data.coco import load_coco
from instseg.data.masks import normalize_rle, rle_to_mask
from instseg.data.schema import parse_instance_jsonl
from instseg.errors import DatasetError
from .fuzz_checks import check_results, small_gt


@pytest.mark.parametrize("mask_path", [["a", {"b": 1}], "x" * 5000, 7, ""])
def test_jsonl_mask_path_that_is_not_a_usable_name(tmp_path, mask_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"class": 0, "mask_path": mask_path}) + "\n")
    instances, findings = parse_instance_jsonl(path, 60, 40, 3)  # was OSError: File name too long
    assert instances == [] and len(findings) == 1 and findings[0].line == 1 and findings[0].file == path


@pytest.mark.parametrize("rle, why", [
    ({"size": [40, 60], "counts": "@"}, "negative"),  # was ValueError from the C decoder at decode time
    ({"size": [40, 60], "counts": "~~"}, "alphabet"),
    ({"size": [40, 60], "counts": ""}, "sum to 0"),  # was an all-zero mask with a different area
    ({"size": [40, 60], "counts": "0"}, "sum to 0"),
    ({"size": [40, 60], "counts": "P"}, "truncated"),
    ({"size": None, "counts": [2400]}, "two integers"),  # was TypeError
    ({"size": [40, 60], "counts": [2400, -5, 5]}, "negative"),
    ({"size": [40, 60], "counts": [True] * 2400}, "integers"),
    ({"size": [10**6, 10**6], "counts": [10**12]}, "at most"),  # a 1e12-pixel mask is not decoded
    ({"size": [0, 60], "counts": []}, "positive"),
])
def test_bad_rle_is_a_value_error_before_decoding(rle, why):
    with pytest.raises(ValueError, match=why):
        normalize_rle(rle)


def test_valid_compressed_rle_still_decodes():
    from instseg.data.masks import mask_to_rle

    import numpy as np

    m = np.zeros((40, 60), np.uint8)
    m[3:9, 5:50] = 1
    rle = mask_to_rle(m)
    assert np.array_equal(rle_to_mask(normalize_rle(rle)), m)
    assert np.array_equal(rle_to_mask(normalize_rle({"size": rle["size"], "counts": rle["counts"].encode()})), m)


@pytest.mark.parametrize("image", [
    {"id": 1, "file_name": [False, {"a": None}], "width": 60, "height": 40},  # was OSError: name too long
    {"id": 1, "file_name": "x" * 3000 + ".png", "width": 60, "height": 40},
    {"id": 1, "file_name": "a.png", "width": 10**12, "height": 40},  # would allocate a 4e13-pixel mask
    {"id": 1, "file_name": "a.png", "width": 1e400, "height": 40},
    {"id": 1, "file_name": "x" * 300, "width": 60, "height": 40},  # slow set: OSError name too long
])
def test_coco_image_entries_that_crashed(tmp_path, image):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [image], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    if len(str(image["file_name"])) == 300:
        ds = load_coco(path, tmp_path)  # a name no file system holds: the image is simply not found
        assert [f.code for f in ds.findings] == ["image-not-found"]
        return
    with pytest.raises(DatasetError, match="ann.json: images\\[0\\]"):
        load_coco(path, tmp_path)


@pytest.mark.parametrize("doc", [
    [{"image_id": []}],  # was TypeError: unhashable type
    [{"image_id": 1, "category_id": {"a": 1}, "score": 1.0}],
    [{"image_id": 1, "category_id": 1, "score": 0.0, "segmentation": {"size": [40, 60], "counts": None}}],  # AttributeError
    [{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [40, 60], "counts": "@@"}}],
    [{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": ["a", None, 1, 2],
      "segmentation": [[2, 2, 30, 2, 30, 20]]}],
])
def test_results_entries_that_crashed(tmp_path, doc):
    check_results(doc, tmp_path, small_gt())  # asserts a DatasetError naming results.json, not a crash
    from instseg.evaluation.checks import check_results as check

    with pytest.raises(DatasetError, match="results.json: result 0"):
        check(doc, small_gt(), str(tmp_path / "results.json"), need_segm=True, need_bbox=True)


def test_yaml_error_with_a_nul_is_one_line(tmp_path):
    """Slow set: PyYAML's reader error spans two lines; instseg's message is one."""
    from instseg.data.yaml_config import load_data_yaml

    path = tmp_path / "data.yaml"
    path.write_text("\x00{}\n")
    with pytest.raises(DatasetError, match="data.yaml") as e:
        load_data_yaml(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["nc: 2\npath:\n  ? ''\n  : null\n  ? " + "x" * 300 + "\n  : null\nnames: [a, b]\n",
                                  "path: .\ntrain: [{a: 1}]\nnames: [a]\n"])
def test_data_yaml_path_that_is_not_a_string(tmp_path, text):
    """Slow set: a mapping as 'path' became a 300-character folder name (OSError: File name too long)."""
    from instseg.data.yaml_config import load_data_yaml

    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(DatasetError, match="data.yaml: key '(path|train)' must be"):
        load_data_yaml(path)
