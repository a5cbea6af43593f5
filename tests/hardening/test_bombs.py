"""Inputs built to exhaust memory: a 30,000 x 30,000 PNG (a few hundred bytes on disk), a 1 GB label file
(sparse: no disk used), huge sizes claimed by a JSON. Each is refused with a message naming the file, before
anything is decoded or read. (Memory of the real big inputs: scripts/bench/bench_big_inputs.py.)"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from instseg.data.images import MAX_IMAGE_PIXELS, load_image
from instseg.errors import DatasetError


def png_bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A valid PNG header claiming ``width x height`` (gray 8-bit), the start of an all-zero IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compressobj(9).compress(b"\0" * (width + 1) * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_png_bomb_is_refused_before_decoding(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    before = _peak_rss_mb()
    with pytest.raises(DatasetError, match=r"bomb.png: the image is too large to decode .*INSTSEG_MAX_IMAGE_PIXELS"):
        load_image(bomb)
    assert _peak_rss_mb() - before < 200  # a decode would take 900 MB


def test_png_just_under_the_limit_is_not_called_a_bomb(tmp_path):
    from instseg.data.images import check_image_pixels

    check_image_pixels(tmp_path / "x.png", 10_000, MAX_IMAGE_PIXELS // 10_000)
    with pytest.raises(DatasetError, match="x.png"):
        check_image_pixels(tmp_path / "x.png", 10_000, MAX_IMAGE_PIXELS // 10_000 + 1)


def test_png_bomb_in_a_dataset_is_one_finding(tmp_path):
    from instseg.data.checks import load_split
    from instseg.data.types import Severity

    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    png_bomb(tmp_path / "images" / "train" / "bomb.png")
    cv2.imwrite(str(tmp_path / "images" / "train" / "ok.png"), np.zeros((32, 32, 3), np.uint8))
    for stem in ("bomb", "ok"):
        (tmp_path / "labels" / "train" / f"{stem}.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/train\nnames: [x]\n")
    records, findings = load_split(tmp_path / "data.yaml", "train")
    assert [r.path.name for r in records] == ["ok.png"]
    bomb = [f for f in findings if f.code == "image-too-large"]
    assert len(bomb) == 1 and bomb[0].severity == Severity.ERROR and bomb[0].file.name == "bomb.png"
    assert "30000x30000" in bomb[0].message


def test_masks2coco_refuses_a_bomb_mask(tmp_path):
    from instseg.data.masks2coco import masks2coco

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    png_bomb(tmp_path / "masks" / "a_mask.png")
    with pytest.raises(DatasetError, match="a_mask.png: the image is too large"):
        masks2coco(tmp_path / "images", tmp_path / "masks", tmp_path / "c.json")


def test_labelme_bomb_mask_and_huge_claimed_size(tmp_path):
    from instseg.data.labelme import labelme2yolo

    lm = tmp_path / "lm"
    lm.mkdir()
    cv2.imwrite(str(lm / "a.png"), np.zeros((20, 30, 3), np.uint8))
    bomb = base64.b64encode(png_bomb(tmp_path / "b.png").read_bytes()).decode()
    shapes = [{"label": "x", "points": [[0, 0], [10, 10]], "shape_type": "mask", "mask": bomb},
              {"label": "x", "points": [[1, 1], [10, 1], [10, 8]], "shape_type": "polygon"}]
    (lm / "a.json").write_text(json.dumps({"shapes": shapes, "imagePath": "a.png", "imageHeight": 20, "imageWidth": 30}))
    (lm / "b.json").write_text(json.dumps({"shapes": shapes[1:], "imagePath": "a.png", "imageHeight": 10**9,
                                           "imageWidth": 10**5}))
    report = labelme2yolo(lm, tmp_path / "out")
    codes = {(f.file.name, f.code) for f in report.findings}
    assert ("a.json", "bad-shape") in codes and ("b.json", "bad-labelme") in codes
    assert any("too large to decode" in f.message for f in report.findings)
    assert report.images == {"train": 1} and report.instances == 1


def test_one_gigabyte_label_file_is_refused_by_its_size(tmp_path):
    from instseg.data.yolo import MAX_LABEL_BYTES, parse_yolo_labels

    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # sparse: 1 GB long, no block written
        f.truncate(2**30)
    assert big.stat().st_size == 2**30 > MAX_LABEL_BYTES
    before = _peak_rss_mb()
    instances, findings = parse_yolo_labels(big, 640, 480, 3)
    assert instances == [] and [f.code for f in findings] == ["label-too-large"]
    assert "1,024 MiB" in findings[0].message and findings[0].file == big
    assert _peak_rss_mb() - before < 50


@pytest.mark.slow
def test_ten_thousand_instances_parse(tmp_path):
    """10,000 polygons in one label file: parsed in full, memory proportional to the text."""
    from instseg.data.yolo import parse_yolo_labels

    rng = np.random.default_rng(0)
    lines = []
    for k in range(10_000):
        cx, cy = rng.uniform(0.05, 0.95, 2)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 8))
        pts = np.stack([cx + 0.02 * np.cos(ang), cy + 0.02 * np.sin(ang)], 1)
        lines.append(f"{k % 3} " + " ".join(f"{v:.6f}" for v in pts.ravel()))
    path = tmp_path / "many.txt"
    path.write_text("\n".join(lines) + "\n")
    instances, findings = parse_yolo_labels(path, 640, 640, 3)
    assert len(instances) + sum(f.code == "duplicate-line" for f in findings) == 10_000
