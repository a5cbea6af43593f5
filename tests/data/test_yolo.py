from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instseg.data.types import Instance, Severity
from instseg.data.yolo import (
    COORD_TOLERANCE,
    parse_yolo_labels,
    parse_yolo_text,
    write_yolo_labels,
    yolo_line,
)

W, H, NC = 200, 100, 3
TRI = "0.1 0.1 0.5 0.1 0.3 0.6"


def parse(text: str, nc: int = NC):
    return parse_yolo_text(text, Path("labels/img_017.txt"), W, H, nc)


@pytest.mark.parametrize(
    "line, n_instances, codes, severity",
    [
        (f"1 {TRI}", 1, [], None),
        ("2 0.5 0.5 0.2 0.4", 1, [], None),  # box only
        (f"1.0 {TRI}", 1, [], None),  # integral float class
        (f"cat {TRI}", 0, ["malformed-line"], Severity.ERROR),
        (f"1.5 {TRI}", 0, ["malformed-line"], Severity.ERROR),
        ("1 0.1 0.2 0.3 0.4 0.5 0.6 0.7", 0, ["malformed-line"], Severity.ERROR),  # odd coordinates
        ("1 0.1 0.2", 0, ["malformed-line"], Severity.ERROR),
        ("1 0.1 0.2 0.3", 0, ["malformed-line"], Severity.ERROR),
        ("1", 0, ["malformed-line"], Severity.ERROR),
        ("1 0.1 0.1 0.5 nan 0.3 0.6", 0, ["malformed-line"], Severity.ERROR),
        ("1 0.1 0.1 0.5 x 0.3 0.6", 0, ["malformed-line"], Severity.ERROR),
        (f"3 {TRI}", 0, ["class-out-of-range"], Severity.ERROR),
        (f"-1 {TRI}", 0, ["class-out-of-range"], Severity.ERROR),
        ("0 -0.005 0.1 0.5 0.1 0.3 1.008", 1, ["coords-clipped"], Severity.WARNING),
        ("0 -0.02 0.1 0.5 0.1 0.3 0.6", 0, ["coords-out-of-range"], Severity.ERROR),
        ("0 0.1 0.1 0.5 0.1 0.3 1.5", 0, ["coords-out-of-range"], Severity.ERROR),
        ("0 0.1 0.1 0.5 0.1 0.1 0.1", 0, ["degenerate-polygon"], Severity.ERROR),  # 2 distinct points
        ("0 0.1 0.1 0.2 0.2 0.3 0.3 0.4 0.4", 0, ["zero-area"], Severity.ERROR),  # collinear
        ("0 0.5 0.5 0.0 0.3", 0, ["zero-area"], Severity.ERROR),  # box of zero width
        (f"1 {TRI}\n1 {TRI}", 1, ["duplicate-line"], Severity.WARNING),
        (f"1 {TRI}\n\n   \n2 {TRI}", 2, [], None),  # blank lines ignored, same geometry other class kept
        ("", 0, [], None),
    ],
)
def test_line_checks(line, n_instances, codes, severity):
    instances, findings = parse(line)
    assert len(instances) == n_instances
    assert [f.code for f in findings] == codes
    if severity is not None:
        assert findings[0].severity is severity
        assert findings[0].file == Path("labels/img_017.txt")
        assert findings[0].line == (2 if codes == ["duplicate-line"] else 1)


def test_message_names_file_line_and_action():
    _, findings = parse(f"0 {TRI}\n\n5 {TRI}", nc=3)
    assert (
        str(findings[0])
        == "labels/img_017.txt:3: class 5 >= nc 3 (data.yaml names 3 classes) -> line skipped"
    )


def test_absolute_pixels_and_bbox():
    (inst,), _ = parse(f"2 {TRI}")
    np.testing.assert_allclose(inst.polygons[0], [[20, 10], [100, 10], [60, 60]])
    np.testing.assert_allclose(inst.bbox, [20, 10, 100, 60])
    assert inst.cls == 2 and inst.source_line == 1 and inst.has_mask


def test_box_only_instance():
    (inst,), _ = parse("1 0.5 0.5 0.2 0.4")
    assert inst.polygons == [] and inst.rle is None and not inst.has_mask
    np.testing.assert_allclose(inst.bbox, [80, 30, 120, 70])


def test_clipping_exact_values():
    (inst,), (f,) = parse(f"0 {-COORD_TOLERANCE} 0.1 0.5 0.1 0.3 1.004")
    assert inst.polygons[0][:, 0].min() == 0.0 and inst.polygons[0][:, 1].max() == H
    assert "clipped" in f.action


def test_duplicate_reports_first_line():
    _, (f,) = parse(f"0 {TRI}\n1 {TRI}\n0 0.10 0.1 0.5 0.1 0.3 0.6")
    assert f.line == 3 and f.message == "duplicate of line 1" and f.action == "line dropped"


def test_parse_file_bom_and_missing(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(("\ufeff" + f"0 {TRI}\r\n1 0.5 0.5 0.1 0.1\r\n").encode("utf-8"))
    instances, findings = parse_yolo_labels(p, W, H, NC)
    assert [i.cls for i in instances] == [0, 1] and findings == []
    instances, (f,) = parse_yolo_labels(tmp_path / "missing.txt", W, H, NC)
    assert instances == [] and f.code == "unreadable-label"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_write_parse_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    instances = []
    for k in range(5):
        pts = rng.uniform(0, 1, (int(rng.integers(3, 30)), 2)) * [W, H]
        instances.append(Instance(cls=k % NC, polygons=[pts]))
    instances.append(Instance(cls=1, bbox=np.array([10.0, 20.0, 50.5, 90.25])))
    path = tmp_path / "labels" / "x.txt"
    write_yolo_labels(path, instances, W, H)
    back, findings = parse_yolo_labels(path, W, H, NC)
    assert findings == [] and len(back) == len(instances)
    for a, b in zip(instances, back, strict=True):
        assert a.cls == b.cls
        if a.polygons:
            np.testing.assert_allclose(b.polygons[0] / [W, H], a.polygons[0] / [W, H], atol=6e-7)
        else:
            np.testing.assert_allclose(b.bbox, a.bbox, atol=1e-4)
    assert all(len(t.split(".")[-1]) == 6 for t in path.read_text().split()[1:4])


def test_write_empty_file_is_background(tmp_path):
    path = tmp_path / "e.txt"
    write_yolo_labels(path, [], W, H)
    assert path.read_text() == ""


def test_multi_part_and_rle_written_as_one_ring():
    from instseg.data.masks import mask_iou, mask_to_rle, polygons_to_rle

    a = np.array([[10, 10], [40, 10], [40, 40], [10, 40]], float)
    b = a + [100, 20]
    line = yolo_line(Instance(cls=0, polygons=[a, b]), W, H)
    ring = np.array(line.split()[1:], float).reshape(-1, 2) * [W, H]
    assert mask_iou(polygons_to_rle([a, b], H, W), polygons_to_rle([ring], H, W)) > 0.99
    mask = np.zeros((H, W), np.uint8)
    mask[20:60, 30:90] = 1
    mask[30:50, 50:70] = 0  # a hole
    line = yolo_line(Instance(cls=2, rle=mask_to_rle(mask)), W, H)
    ring = np.array(line.split()[1:], float).reshape(-1, 2) * [W, H]
    assert line.startswith("2 ") and mask_iou(mask_to_rle(mask), polygons_to_rle([ring], H, W)) > 0.99


def test_instance_without_geometry_is_refused():
    from instseg.errors import ConversionError

    with pytest.raises(ConversionError, match="class 1"):
        yolo_line(Instance(cls=1), W, H)
