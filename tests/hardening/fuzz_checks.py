"""What every fuzzed parser must do: return (results, findings naming the file and line) or raise an
:class:`InstsegError` whose message names the file. Any other exception escaping is a crash (a bug)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from instseg.errors import InstsegError

W, H, NC = 60, 40, 3
COUNTS: dict[str, int] = {}  # inputs tried per parser (read by the measurement script)


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def _names_file(err: InstsegError, path: Path) -> None:
    assert path.name in str(err), f"error does not name {path.name}: {err}"
    assert "\n" not in str(err).strip(), f"error is not one line: {err!r}"


def check_yolo(text: str, folder: Path) -> None:
    from instseg.data.yolo import parse_yolo_text

    _count("yolo")
    path = folder / "img.txt"
    instances, findings = parse_yolo_text(text, path, W, H, NC)
    nlines = len(text.splitlines())
    for f in findings:
        assert f.file == path and f.line is not None and 1 <= f.line <= nlines, f
    for inst in instances:
        assert 0 <= inst.cls < NC and inst.source_line is not None
        geom = inst.polygons[0] if inst.polygons else inst.bbox.reshape(-1, 2)
        assert np.isfinite(geom).all() and (geom >= 0).all() and (geom[:, 0] <= W).all() and (geom[:, 1] <= H).all()


def check_jsonl(text: str, folder: Path) -> None:
    from instseg.data.schema import parse_instance_jsonl

    _count("jsonl")
    path = folder / "img.jsonl"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    instances, findings = parse_instance_jsonl(path, W, H, NC)
    for f in findings:  # a line-level finding names its line; a file that cannot be decoded is file-level
        assert f.file == path and (f.line is not None or f.code == "unreadable-label"), f
    for inst in instances:
        assert 0 <= inst.cls < NC and (inst.has_mask or inst.bbox is not None)
        assert inst.bbox is None or np.isfinite(inst.bbox).all()


def check_rle(rle: object) -> None:
    from instseg.data.masks import normalize_rle, rle_area, rle_to_mask

    _count("rle")
    try:
        norm = normalize_rle(rle)  # type: ignore[arg-type]
    except ValueError:
        return  # the documented rejection (callers wrap it with their file and line)
    mask = rle_to_mask(norm)
    assert mask.shape == tuple(norm["size"]) and int(mask.sum()) == rle_area(norm)


def check_coco(doc: dict, folder: Path) -> None:
    from instseg.data.coco import load_coco

    _count("coco")
    path = folder / "ann.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    try:
        ds = load_coco(path, folder)
    except InstsegError as e:
        _names_file(e, path)
        return
    for f in ds.findings:
        assert f.file == path, f
    for rec in ds.records:
        assert rec.width > 0 and rec.height > 0
        for inst in rec.instances:
            assert 0 <= inst.cls < len(ds.names)


def check_labelme(doc: dict, folder: Path) -> None:
    from instseg.data.labelme import labelme2yolo

    _count("labelme")
    src = folder / "lm"
    src.mkdir(exist_ok=True)
    path = src / "img.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    try:
        report = labelme2yolo(src, folder / "out")
    except InstsegError as e:
        assert "img.json" in str(e) or str(src) in str(e), e
        return
    for f in report.findings:
        assert f.file == path, f


def check_data_yaml(text: str, folder: Path) -> None:
    from instseg.data.yaml_config import load_data_yaml

    _count("data.yaml")
    path = folder / "data.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        spec = load_data_yaml(path)
    except InstsegError as e:
        _names_file(e, path)
        return
    assert all(isinstance(n, str) for n in spec.names)


def check_results(doc: object, folder: Path, gt) -> None:
    from instseg.evaluation.checks import check_results as check
    from instseg.evaluation.results import load_results

    _count("results")
    path = folder / "results.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    try:
        results = load_results(path)
        check(results, gt, str(path), need_segm=True, need_bbox=True)
    except InstsegError as e:
        _names_file(e, path)


def small_gt():
    from instseg.evaluation.checks import load_ground_truth

    return load_ground_truth({
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                   {"id": 2, "file_name": "b.png", "width": W, "height": H}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 20, 10], "area": 200,
                         "iscrowd": 0, "segmentation": [[2, 2, 22, 2, 22, 12, 2, 12]]}],
        "categories": [{"id": 1, "name": "a"}, {"id": 3, "name": "c"}]})
