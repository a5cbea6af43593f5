from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instseg.data.schema import parse_instance_jsonl

W, H, NC = 64, 48, 3


def _write(tmp_path: Path, *objs) -> Path:
    path = tmp_path / "labels" / "a.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n")
    return path


@pytest.mark.parametrize(
    "obj, bbox, has_mask",
    [
        ({"class": 0, "polygon": [[10, 10], [30, 10], [30, 20]]}, [10, 10, 30, 20], True),
        ({"class": 1, "polygon": [10, 10, 30, 10, 30, 20]}, [10, 10, 30, 20], True),
        (
            {"class": 2, "polygons": [[[1, 1], [5, 1], [5, 5]], [[40, 40], [50, 40], [50, 45]]]},
            [1, 1, 50, 45],
            True,
        ),
        (
            {"class": 0, "polygon": [[10, 10], [30, 10], [30, 20]], "bbox": [9, 9, 31, 21]},
            [9, 9, 31, 21],
            True,
        ),
        ({"class": 1, "bbox": [2, 3, 20, 30]}, [2, 3, 20, 30], False),
        (
            {"class": 1, "rle": {"size": [H, W], "counts": [H * 5 + 2, 4, H * W - H * 5 - 6]}},
            [5, 2, 6, 6],
            True,
        ),
    ],
)
def test_valid_objects(tmp_path, obj, bbox, has_mask):
    (inst,), findings = parse_instance_jsonl(_write(tmp_path, obj), W, H, NC)
    assert findings == []
    assert inst.cls == obj["class"] and inst.has_mask is has_mask and inst.source_line == 1
    np.testing.assert_allclose(inst.bbox, bbox)


def test_mask_path_with_hole(tmp_path):
    mask = np.zeros((H, W), np.uint8)
    mask[10:30, 10:40] = 255
    mask[15:25, 20:30] = 0
    (tmp_path / "labels" / "masks").mkdir(parents=True)
    Image.fromarray(mask).save(tmp_path / "labels" / "masks" / "a_0.png")
    path = _write(tmp_path, "# comment", {"class": 2, "mask_path": "masks/a_0.png", "iscrowd": True})
    (inst,), findings = parse_instance_jsonl(path, W, H, NC)
    from instseg.data.masks import rle_to_mask

    assert findings == [] and inst.iscrowd and inst.source_line == 2
    np.testing.assert_array_equal(rle_to_mask(inst.rle), (mask > 0).astype(np.uint8))
    np.testing.assert_allclose(inst.bbox, [10, 10, 40, 30])


@pytest.mark.parametrize(
    "line, code, fragment",
    [
        ("{not json", "malformed-line", "not valid JSON"),
        ('{"class": 3, "polygon": [[1,1],[5,1],[5,5]]}', "class-out-of-range", "class 3 >= nc 3"),
        ('{"class": "a", "bbox": [1,1,5,5]}', "invalid-instance", "'class' must be an integer"),
        ('{"class": 0}', "invalid-instance", "no geometry"),
        ('{"class": 0, "polygon": [[1,1],[5,1]], "bbox": [1,1,5,5]}', "invalid-instance", "fewer than 3"),
        ('{"class": 0, "polygon": [[1,1],[2,2],[3,3]]}', "invalid-instance", "zero area"),
        ('{"class": 0, "polygon": [[1,1],[500,1],[5,5]]}', "invalid-instance", "outside the 64x48 image"),
        (
            '{"class": 0, "polygon": [[1,1],[5,1],[5,5]], "rle": {"size": [48, 64], "counts": []}}',
            "invalid-instance",
            "not polygon and rle",
        ),
        ('{"class": 0, "mask_path": "nope.png"}', "invalid-instance", "image not found"),
        ('{"class": 0, "rle": {"size": [10, 10], "counts": [100]}}', "invalid-instance", "not the image's"),
        ('{"class": 0, "bbox": [5, 5, 2, 9]}', "invalid-instance", "is not a box"),
        ('{"class": 0, "bbox": [1,1,5,5], "colour": "red"}', "invalid-instance", "unknown keys ['colour']"),
        ("[1, 2]", "invalid-instance", "expected a JSON object"),
    ],
)
def test_invalid_lines(tmp_path, line, code, fragment):
    path = _write(tmp_path, {"class": 0, "bbox": [1, 1, 5, 5]}, line)
    instances, (f,) = parse_instance_jsonl(path, W, H, NC)
    assert len(instances) == 1  # the good line survives
    assert f.code == code and f.line == 2 and f.action == "line skipped"
    assert fragment in f.message
