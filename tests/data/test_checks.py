from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instseg.data.checks import load_split, scan_dataset
from instseg.data.types import Severity
from instseg.data.yaml_config import load_data_yaml

TRI = "0.1 0.1 0.5 0.1 0.3 0.6"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("INSTSEG_CACHE_DIR", str(d))
    return d


def _img(path: Path, size=(40, 30), mode="RGB", orientation=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    arr = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    img = Image.fromarray(arr[..., 0].astype(np.uint16) * 257) if mode == "I;16" else img.convert(mode)
    kw = {}
    if orientation:
        exif = img.getexif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    img.save(path, **kw)
    return path


def _lab(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture()
def quirky(tmp_path) -> Path:
    """A dataset with one of each problem; returns its data.yaml."""
    ds = tmp_path / "ds"
    it, lt = ds / "images" / "train", ds / "labels" / "train"
    _img(it / "a.jpg"), _lab(lt / "a.txt", f"0 {TRI}\n1 0.2 0.2 0.6 0.2 0.4 0.8\n")
    _img(it / "b.jpg")  # no label file
    _img(it / "c.jpg"), _lab(lt / "c.txt", "")  # empty label file
    _img(it / "d.png", mode="L"), _lab(lt / "d.txt", f"0 {TRI}\n")
    _img(it / "e.jpg", orientation=6), _lab(lt / "e.txt", f"0 {TRI}\n")
    _img(it / "f.png", mode="RGBA"), _lab(lt / "f.txt", f"0 {TRI}\n")
    _img(it / "g.png", mode="I;16"), _lab(lt / "g.txt", f"0 {TRI}\n")
    trunc = _img(it / "h.jpg", size=(64, 64))
    trunc.write_bytes(trunc.read_bytes()[:-200])
    _lab(lt / "h.txt", f"0 {TRI}\n")
    _img(it / "i.png", size=(8, 30)), _lab(lt / "i.txt", f"0 {TRI}\n")  # too small
    (
        _img(it / "j.jpg"),
        _lab(lt / "j.txt", f"1 0.5 0.5 0.2 0.2\n7 {TRI}\n0 {TRI}\n0 {TRI}\n"),
    )  # box, bad class, dup
    _img(it / "k.jpg"), _img(it / "k.png"), _lab(lt / "k.txt", f"0 {TRI}\n")  # duplicate stem
    _img(it / "sub" / "a.jpg"), _lab(lt / "sub" / "a.txt", f"0 {TRI}\n")  # same stem, other folder
    _img(it / "m.jpg"), _lab(lt / "m.jsonl", '{"class": 1, "polygon": [[1, 1], [20, 1], [20, 20]]}\n')
    (it / "clip.mp4").write_bytes(b"\x00" * 10)
    _lab(lt / "orphan.txt", f"0 {TRI}\n")
    _lab(lt / "classes.txt", "cat\ndog\n")
    _img(ds / "images" / "val" / "v.jpg"), _lab(ds / "labels" / "val" / "v.txt", f"1 {TRI}\n")
    yaml_path = ds / "data.yaml"
    yaml_path.write_text("train: images/train\nval: images/val\nnames: [cat, dog]\n")
    return yaml_path


EXPECTED_CODES = {
    "no-label-file": 1,
    "empty-label-file": 1,
    "image-mode": 3,
    "exif-rotation": 1,
    "corrupt-image": 1,
    "tiny-image": 1,
    "class-out-of-range": 1,
    "duplicate-line": 1,
    "duplicate-stem": 2,
    "not-an-image": 1,
    "orphan-label": 1,
    "mixed-box-polygon": 1,
}


def test_quirky_dataset_findings(quirky):
    records, findings = load_split(quirky, "train")
    assert Counter(f.code for f in findings) == EXPECTED_CODES
    by_code = {f.code: f for f in findings}
    assert (
        by_code["corrupt-image"].file.name == "h.jpg" and by_code["corrupt-image"].severity is Severity.ERROR
    )
    assert by_code["tiny-image"].severity is Severity.ERROR and "8x30" in by_code["tiny-image"].message
    assert str(by_code["class-out-of-range"]).endswith(
        "j.txt:2: class 7 >= nc 2 (data.yaml names 2 classes) -> line skipped"
    )
    assert by_code["orphan-label"].file.name == "orphan.txt"
    stems = sorted(f.message.split("'")[1] for f in findings if f.code == "duplicate-stem")
    assert stems == ["a", "k"]
    assert sorted(f.file.name for f in findings if f.code == "image-mode") == ["d.png", "f.png", "g.png"]
    names = [r.path.name for r in records]
    assert "h.jpg" not in names and "i.png" not in names and len(records) == 12
    assert [r.image_id for r in records] == list(range(1, 13))
    e = next(r for r in records if r.path.name == "e.jpg")
    assert (e.width, e.height) == (30, 40)  # EXIF 6: stored 40x30
    np.testing.assert_allclose(e.instances[0].polygons[0][0], [3.0, 4.0])  # normalized by the displayed size
    j = next(r for r in records if r.path.name == "j.jpg")
    assert [(i.cls, i.has_mask) for i in j.instances] == [(1, False), (0, True)]
    m = next(r for r in records if r.path.name == "m.jpg")
    assert m.label_path.suffix == ".jsonl" and m.instances[0].cls == 1


def test_quirky_report_summary(quirky):
    report = scan_dataset(quirky)
    train = report.splits["train"]
    assert (train.images, train.skipped_images, train.background, train.labelled) == (12, 2, 2, 10)
    assert (train.instances, train.box_only) == (12, 1)
    assert train.class_counts == [9, 3]
    assert not report.fatal
    assert report.counts()[Severity.ERROR] == 3


@pytest.mark.parametrize(
    "yaml_text, labels, code, severity",
    [
        ("train: images/train\nnames: [a]\n", False, "unlabelled-split", Severity.FATAL),
        ("train: images/train\nnames: [a]\n", True, "no-val-split", Severity.ERROR),
        ("val: images/train\nnames: [a]\n", True, "no-train-split", Severity.FATAL),
        ("train: images/train\nval: images/train\nnames: [a]\n", True, "train-val-overlap", Severity.WARNING),
    ],
)
def test_dataset_level(tmp_path, yaml_text, labels, code, severity):
    ds = tmp_path / "d"
    _img(ds / "images" / "train" / "x.jpg")
    if labels:
        _lab(ds / "labels" / "train" / "x.txt", f"0 {TRI}\n")
    (ds / "data.yaml").write_text(yaml_text)
    report = scan_dataset(ds / "data.yaml")
    hits = [f for f in report.findings if f.code == code]
    assert len(hits) == 1 and hits[0].severity is severity
    assert report.fatal is (severity is Severity.FATAL)


def test_boxes_only_is_an_error(tmp_path):
    ds = tmp_path / "d"
    _img(ds / "images" / "train" / "x.jpg"), _lab(ds / "labels" / "train" / "x.txt", "0 0.5 0.5 0.2 0.2\n")
    (ds / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a]\n")
    _, findings = load_split(ds / "data.yaml", "train")
    assert [f.code for f in findings] == ["boxes-only"] and findings[0].severity is Severity.ERROR


def test_cache_hits_and_rescan_of_changed_file(quirky, cache_dir):
    spec = load_data_yaml(quirky)
    from instseg.data.checks import scan_split

    _, f1, s1 = scan_split(spec, "train")
    assert s1.cache_hits == 0 and s1.cache_path is not None and s1.cache_path.is_file()
    assert s1.cache_path.parent == quirky.parent / "labels"  # writable dataset: beside the labels folder
    r2, f2, s2 = scan_split(spec, "train")
    assert s2.cache_hits == 14 and [str(f) for f in f2] == [str(f) for f in f1]
    lab = quirky.parent / "labels" / "train" / "a.txt"
    lab.write_text(f"0 {TRI}\n5 {TRI}\n")
    os.utime(lab, ns=(time.time_ns(), time.time_ns() + 10**9))
    r3, f3, s3 = scan_split(spec, "train")
    assert s3.cache_hits == 13
    assert any(f.code == "class-out-of-range" and f.file == lab and f.line == 2 for f in f3)
    (quirky.parent / "images" / "train" / "b.jpg").unlink()
    _, f4, s4 = scan_split(spec, "train")
    assert s4.cache_hits == 13 and s4.images == 11
    assert not any(f.code == "no-label-file" for f in f4)


def test_cache_records_equal_fresh_records(quirky):
    fresh, _ = load_split(quirky, "train")
    cached, _ = load_split(quirky, "train")
    for a, b in zip(fresh, cached, strict=True):
        assert (a.path, a.width, a.height, a.label_path, a.image_id) == (
            b.path,
            b.width,
            b.height,
            b.label_path,
            b.image_id,
        )
        assert [i.cls for i in a.instances] == [i.cls for i in b.instances]
        for ia, ib in zip(a.instances, b.instances, strict=True):
            assert all(np.array_equal(p, q) for p, q in zip(ia.polygons, ib.polygons, strict=True))
            assert np.array_equal(ia.bbox, ib.bbox) and ia.source_line == ib.source_line


def test_read_only_dataset_cache_elsewhere(quirky, cache_dir):
    labels = quirky.parent / "labels"
    os.chmod(labels, 0o555)
    try:
        from instseg.data.checks import scan_split

        _, _, s = scan_split(load_data_yaml(quirky), "train")
        assert s.cache_path is not None and s.cache_path.parent == cache_dir
        assert not any(p.name.endswith(".instseg.cache") for p in labels.iterdir())
    finally:
        os.chmod(labels, 0o755)


def test_corrupt_cache_is_ignored(quirky):
    from instseg.data.checks import scan_split

    spec = load_data_yaml(quirky)
    _, _, s = scan_split(spec, "train")
    s.cache_path.write_text("{broken")
    _, _, s2 = scan_split(spec, "train")
    assert s2.cache_hits == 0


def test_demo_dataset_is_clean(demo_data):
    report = scan_dataset(demo_data)
    assert report.findings == []
    assert report.splits["train"].images == 12 and report.splits["val"].images == 4


def test_coco128_quirks_exactly(coco128_seg):
    report = scan_dataset(coco128_seg / "data.yaml", use_cache=False)
    codes = Counter(f.code for f in report.findings)
    assert codes == {
        "image-mode": 1,
        "no-label-file": 2,
        "orphan-label": 2,
        "train-val-overlap": 1,
        "unused-classes": 1,
    }
    assert sorted(f.file.stem for f in report.findings if f.code == "orphan-label") == [
        "000000000656",
        "000000000659",
    ]
    assert sorted(f.file.stem for f in report.findings if f.code == "no-label-file") == [
        "000000000250",
        "000000000508",
    ]
    train = report.splits["train"]
    assert (train.images, train.labelled, train.background, train.instances) == (128, 126, 2, 929)
    assert sum(c > 0 for c in train.class_counts) == 71
    # the cached scan reads nothing again and reports the same (its speed is a benchmark, not a test)
    scan_dataset(coco128_seg / "data.yaml")  # fills the cache
    warm_report = scan_dataset(coco128_seg / "data.yaml")
    assert warm_report.splits["train"].cache_hits == 128
    assert [str(f) for f in warm_report.findings] == [str(f) for f in report.findings]


def test_fire_seg_quirks_exactly(fire_seg):
    report = scan_dataset(fire_seg / "data.yaml")
    codes = Counter(f.code for f in report.findings)
    assert codes == {
        "data-yaml": 3,
        "empty-label-file": 1,
        "not-an-image": 1,
        "image-mode": 1,
        "unlabelled-split": 1,
    }
    assert all(f.severity is Severity.INFO for f in report.findings)
    s = report.splits
    assert (s["train"].images, s["train"].background, s["train"].instances) == (200, 1, 241)
    assert (s["val"].images, s["val"].instances, s["test"].images) == (50, 61, 4)


def test_flat_layout_and_txt_lists_report_nothing_false(tmp_path):
    """images/ at the dataset root beside data.yaml and a README; train/val as .txt lists over one folder."""
    ds = tmp_path / "d"
    for name in ("a", "b", "c"):
        _img(ds / "images" / f"{name}.jpg"), _lab(ds / "labels" / f"{name}.txt", f"0 {TRI}\n")
    (ds / "README.md").write_text("hello")
    (ds / "train.txt").write_text("./images/a.jpg\n./images/b.jpg\n")
    (ds / "val.txt").write_text("./images/c.jpg\n")
    (ds / "data.yaml").write_text("train: train.txt\nval: val.txt\ntest: images\nnames: [a]\n")
    report = scan_dataset(ds / "data.yaml")
    assert report.findings == []
    assert [s.images for s in report.splits.values()] == [2, 1, 3]
