"""Two processes at once: run folders (``exp``, ``exp2``, never one shared) and the scan cache."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from instseg.rundir import next_run_dir


def _claim(args) -> str:
    project, start, n = args
    while time.time() < start:  # all processes leave the barrier at the same instant
        pass
    return [str(next_run_dir(Path(project), "exp").root.name) for _ in range(n)]


def test_parallel_next_run_dir_gives_distinct_folders(tmp_path):
    ctx = mp.get_context("fork")
    start = time.time() + 0.5
    with ctx.Pool(4) as pool:
        names = [n for chunk in pool.map(_claim, [(tmp_path, start, 5)] * 4) for n in chunk]
    assert len(names) == 20 and len(set(names)) == 20  # nobody shares a folder
    assert set(names) == {"exp", *(f"exp{k}" for k in range(2, 21))}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_lost_race_moves_on(tmp_path, monkeypatch):
    """The folder appears between the existence check and the mkdir: the next number is taken."""
    real_mkdir = os.mkdir

    def racing_mkdir(path, *a, **kw):
        if Path(path).name == "exp":
            real_mkdir(path)  # the other process wins
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    assert next_run_dir(tmp_path, "exp").root.name == "exp2"


def test_exist_ok_and_name_only(tmp_path):
    (tmp_path / "exp").mkdir()
    assert next_run_dir(tmp_path, "exp", exist_ok=True).root == tmp_path / "exp"
    assert next_run_dir(tmp_path, "exp", create=False).root == tmp_path / "exp2"
    assert not (tmp_path / "exp2").exists()
    assert next_run_dir(tmp_path, "run7").root.name == "run7"
    assert next_run_dir(tmp_path, "run7").root.name == "run2"  # Ultralytics' habit: the digits are the counter


# ------------------------------------------------------------------------------------------- scan cache
def _scan_loop(args) -> list:
    data, start, n = args
    from instseg.data.checks import scan_split
    from instseg.data.yaml_config import load_data_yaml

    while time.time() < start:
        pass
    out = []
    for _ in range(n):
        records, findings, summary = scan_split(load_data_yaml(data), "train")
        out.append((len(records), sum(len(r.instances) for r in records), len(findings)))
    return out


def _fresh(data):
    from instseg.data.checks import scan_split
    from instseg.data.yaml_config import load_data_yaml

    records, findings, _ = scan_split(load_data_yaml(data), "train", use_cache=False)
    return len(records), sum(len(r.instances) for r in records), len(findings)


def test_concurrent_scans_never_corrupt_the_cache(tmp_path):
    from instseg.data.demo import make_demo_dataset

    data = make_demo_dataset(tmp_path / "d", n_train=12, n_val=2, imgsz=64, seed=1)
    labels = sorted((tmp_path / "d" / "labels" / "train").glob("*.txt"))
    expected = _fresh(data)
    ctx = mp.get_context("fork")
    start = time.time() + 0.5
    with ctx.Pool(3) as pool:
        pending = pool.map_async(_scan_loop, [(data, start, 8)] * 3)
        while time.time() < start + 0.3:  # meanwhile labels change under the scanners
            time.sleep(0.02)
        labels[0].write_text("")  # one image becomes a background image
        results = pending.get(120)
    caches = list((tmp_path / "d").rglob("*.instseg.cache"))
    assert caches and all(isinstance(json.loads(c.read_text()), dict) for c in caches)
    assert not list((tmp_path / "d").rglob(".*.tmp"))
    assert _scan_loop((data, 0, 1))[0] == _fresh(data) != expected  # the cache agrees with a fresh scan
    assert all(r[0] == expected[0] for chunk in results for r in chunk)


@pytest.mark.parametrize("damage", [
    lambda d: d["entries"].update({k: {"stamp": v["stamp"], "record": {"width": "x"}, "findings": []}
                                   for k, v in d["entries"].items()}),
    lambda d: d["entries"].update({k: {"stamp": v["stamp"], "record": None, "findings": [[1, 2]]}
                                   for k, v in d["entries"].items()}),
    lambda d: d["entries"].update({k: [] for k in d["entries"]}),
])
def test_a_damaged_cache_is_rescanned(tmp_path, damage):
    from instseg.data.demo import make_demo_dataset

    data = make_demo_dataset(tmp_path / "d", n_train=4, n_val=2, imgsz=64, seed=1)
    expected = _fresh(data)
    _scan_loop((data, 0, 1))
    cache = next((tmp_path / "d").rglob("train.instseg.cache"))
    doc = json.loads(cache.read_text())
    damage(doc)
    cache.write_text(json.dumps(doc))
    assert _scan_loop((data, 0, 1))[0] == expected
    cache.write_text(cache.read_text()[:50])  # truncated
    assert _scan_loop((data, 0, 1))[0] == expected
