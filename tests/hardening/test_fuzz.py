"""Fuzzing the parsers of user files with hypothesis (strategies: fuzz_strategies.py, contract:
fuzz_checks.py). The fast set runs about 2,000 inputs in all; the slow set about 100,000
(``-m slow``; sizes from INSTSEG_FUZZ_FAST / INSTSEG_FUZZ_SLOW). Then round trips: write, read, same."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import fuzz_checks as C
from . import fuzz_strategies as S

PARSERS = {
    "yolo": (S.yolo_text(), lambda x, d, gt: C.check_yolo(x, d)),
    "jsonl": (S.jsonl_text(), lambda x, d, gt: C.check_jsonl(x, d)),
    "rle": (S.rle_objects(), lambda x, d, gt: C.check_rle(x)),
    "coco": (S.coco_doc(), lambda x, d, gt: C.check_coco(x, d)),
    "labelme": (S.labelme_doc(), lambda x, d, gt: C.check_labelme(x, d)),
    "data.yaml": (S.data_yaml_text(), lambda x, d, gt: C.check_data_yaml(x, d)),
    "results": (S.results_doc(), lambda x, d, gt: C.check_results(x, d, gt)),
    "yolo-bytes": (st.binary(max_size=200), lambda x, d, gt: _yolo_bytes(x, d)),
}


@pytest.fixture(autouse=True)
def _same_inputs_in_any_order(request):
    """The derandomized sets (everything but the slow set) draw the same inputs whichever tests ran before
    (fuzz_strategies.global_constants_only); the slow set keeps hypothesis' local constants."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    with S.global_constants_only():
        yield


def _yolo_bytes(raw: bytes, folder) -> None:
    """A label file of arbitrary bytes (not UTF-8, NUL, BOM) through the file reader."""
    from instseg.data.yolo import parse_yolo_labels

    C._count("yolo-bytes")
    path = folder / "raw.txt"
    path.write_bytes(raw)
    _, findings = parse_yolo_labels(path, C.W, C.H, C.NC)
    assert all(f.file == path for f in findings)


def _run(name: str, n: int, tmp_path) -> None:
    strategy, check = PARSERS[name]
    gt = C.small_gt() if name == "results" else None

    @S.fuzz_settings(n)
    @given(strategy)
    def run(x):
        check(x, tmp_path, gt)

    run()


@pytest.mark.parametrize("name", list(PARSERS))
def test_fuzz_fast(name, tmp_path):
    _run(name, S.FAST, tmp_path)


@pytest.mark.slow
@pytest.mark.stress
@pytest.mark.parametrize("name", list(PARSERS))
def test_fuzz_slow(name, tmp_path):
    _run(name, S.SLOW, tmp_path)


# ------------------------------------------------------------------------------------------- round trips
@st.composite
def polygons(draw):
    """A simple (star-shaped) polygon in absolute pixels of a W x H image, with a non-trivial area."""
    n = draw(st.integers(3, 12))
    cx, cy = draw(st.floats(10, C.W - 10)), draw(st.floats(10, C.H - 10))
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * np.pi - 1e-3), min_size=n, max_size=n, unique=True))))
    radii = np.array(draw(st.lists(st.floats(3, 9), min_size=n, max_size=n)))
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    from instseg.data.yolo import _shoelace

    if len(np.unique(np.round(pts, 4), axis=0)) < 3 or _shoelace(pts) < 1.0:
        pts = np.array([[cx - 3, cy - 3], [cx + 3, cy - 3], [cx, cy + 3]])
    return pts


@S.fuzz_settings(150)
@given(st.lists(st.tuples(st.integers(0, C.NC - 1), polygons()), min_size=0, max_size=5))
def test_yolo_round_trip(tmp_path_factory, items):
    from instseg.data.types import Instance
    from instseg.data.yolo import parse_yolo_labels, write_yolo_labels

    path = tmp_path_factory.mktemp("rt") / "a.txt"
    write_yolo_labels(path, [Instance(c, polygons=[p]) for c, p in items], C.W, C.H)
    back, findings = parse_yolo_labels(path, C.W, C.H, C.NC)
    assert not [f for f in findings if f.severity.value in ("error", "fatal")]
    # duplicates are dropped by the reader: compare the distinct instances
    assert len(back) == len({(c, tuple(np.round(p / [C.W, C.H], 6).ravel())) for c, p in items})
    for inst in back:
        c, p = next((c, p) for c, p in items if c == inst.cls and len(p) == len(inst.polygons[0])
                    and np.allclose(p, inst.polygons[0], atol=1e-5 * C.W))
        assert np.abs(inst.polygons[0] - p).max() <= 1e-6 * max(C.W, C.H)


@S.fuzz_settings(150)
@given(st.lists(st.tuples(st.integers(0, C.NC - 1), polygons(), st.booleans()), min_size=1, max_size=4))
def test_jsonl_round_trip(tmp_path_factory, items):
    """Instances written as .jsonl (polygons, or the same polygon's RLE) read back as the same masks."""
    from instseg.data.masks import mask_iou, polygons_to_rle
    from instseg.data.schema import parse_instance_jsonl

    path = tmp_path_factory.mktemp("rt") / "a.jsonl"
    lines = []
    for c, p, as_rle in items:
        obj = {"class": c, "rle": polygons_to_rle([p], C.H, C.W)} if as_rle else {"class": c, "polygon": p.tolist()}
        lines.append(json.dumps(obj))
    path.write_text("\n".join(lines) + "\n")
    back, findings = parse_instance_jsonl(path, C.W, C.H, C.NC)
    assert [f for f in findings] == [] or all(f.code == "coords-clipped" for f in findings)
    assert [i.cls for i in back] == [c for c, _, _ in items]
    for inst, (_, p, as_rle) in zip(back, items):
        if as_rle:
            assert mask_iou(inst.rle, polygons_to_rle([p], C.H, C.W)) == 1.0
        else:
            assert np.allclose(inst.polygons[0], p)


@S.fuzz_settings(100)
@given(st.lists(polygons(), min_size=1, max_size=3), st.booleans())
def test_rle_round_trip(polys, uncompressed):
    """mask -> RLE -> mask is exact, compressed or as an uncompressed count list."""
    from instseg.data.masks import mask_to_rle, normalize_rle, polygons_to_rle, rle_to_mask

    mask = rle_to_mask(polygons_to_rle(polys, C.H, C.W))
    rle = mask_to_rle(mask)
    if uncompressed:
        flat = mask.ravel(order="F")
        change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
        counts = np.diff(np.concatenate([[0], change])).tolist()
        rle = {"size": [C.H, C.W], "counts": counts[: len(counts)]}
        assert sum(counts) == C.H * C.W
    assert np.array_equal(rle_to_mask(normalize_rle(rle)), mask)


@S.fuzz_settings(60)
@given(st.lists(st.tuples(st.integers(0, 1), polygons()), min_size=1, max_size=4))
def test_coco_round_trip(tmp_path_factory, items):
    """records -> COCO JSON -> records keeps classes and masks."""
    from instseg.data.coco import load_coco, records_to_coco, write_json_atomic
    from instseg.data.masks import mask_iou, polygons_to_rle
    from instseg.data.types import ImageRecord, Instance

    folder = tmp_path_factory.mktemp("rt")
    rec = ImageRecord(path=folder / "a.png", width=C.W, height=C.H,
                      instances=[Instance(c, polygons=[p]) for c, p in items])
    path = write_json_atomic(folder / "a.json", records_to_coco([rec], ["x", "y"], image_root=folder))
    ds = load_coco(path, folder)
    back = ds.records[0].instances
    assert [i.cls for i in back] == [c for c, _ in items]
    for inst, (_, p) in zip(back, items):
        assert mask_iou(polygons_to_rle(inst.polygons, C.H, C.W), polygons_to_rle([p], C.H, C.W)) > 0.999



_ORDER_PROBE = """
import json, sys
sys.path[:0] = sys.argv[1:3]
from hypothesis import given
import fuzz_strategies as S

def draw():
    seen = []

    @S.fuzz_settings(60)
    @given(S.labelme_doc())
    def run(x):
        seen.append(json.dumps(x, sort_keys=True, default=str))

    run()
    return seen

plain = draw()
with S.global_constants_only():
    pinned = draw()
import probe_constants  # a local module with constants of its own, as one an earlier test imported
plain_after = draw()
with S.global_constants_only():
    pinned_after = draw()
print(json.dumps({"plain_changed": plain_after != plain, "pinned_same": pinned_after == pinned}))
"""


def test_fast_inputs_do_not_depend_on_the_modules_earlier_tests_imported(tmp_path):
    """In a fresh interpreter: importing one more local module changes what a derandomized set draws (why
    test_fuzz_fast[labelme] once failed only after test_disk_full), except under global_constants_only."""
    import subprocess
    import sys
    from pathlib import Path

    constants = f"TABLE = {list(range(3, 300))}\nNAMES = {['n' * k for k in range(1, 40)]}\n"
    (tmp_path / "probe_constants.py").write_text(constants)
    out = subprocess.run([sys.executable, "-c", _ORDER_PROBE, str(Path(__file__).parent), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["plain_changed"], "hypothesis no longer draws local constants: global_constants_only can go"
    assert result["pinned_same"], result
