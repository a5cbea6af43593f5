from __future__ import annotations

from pathlib import Path

import pytest

from instseg.data.yaml_config import label_path_for, list_split_images, load_data_yaml, split_files
from instseg.errors import DatasetError


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _write_yaml(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    p = root / "data.yaml"
    p.write_text(text)
    return p


@pytest.fixture()
def layout(tmp_path: Path) -> Path:
    """ds/images/{train,val}/ with 3 + 2 images, a stray file, and a train.txt list."""
    ds = tmp_path / "ds"
    for name in ("a.jpg", "b.PNG", "sub/c.jpeg"):
        _touch(ds / "images" / "train" / name)
    for name in ("d.jpg", "e.bmp"):
        _touch(ds / "images" / "val" / name)
    _touch(ds / "images" / "train" / "notes.md")
    (ds / "train.txt").write_text(f"./images/train/a.jpg\nimages/val/d.jpg\n{ds / 'images/val/e.bmp'}\n\n")
    return ds


@pytest.mark.parametrize(
    "names_yaml, nc, expected",
    [
        ("names: [cat, dog]", None, ["cat", "dog"]),
        ("names: {0: cat, 1: dog}", None, ["cat", "dog"]),
        ("names: {1: dog, 0: cat}", 2, ["cat", "dog"]),
        ("names: {'0': cat, '1': dog}", None, ["cat", "dog"]),
        ("nc: 3", 3, ["class0", "class1", "class2"]),
        ("names: [1, 2.5, yes]", None, ["1", "2.5", "True"]),
    ],
)
def test_names_forms(tmp_path, layout, names_yaml, nc, expected):
    text = f"path: {layout}\ntrain: images/train\n{names_yaml}\n" + (
        f"nc: {nc}\n" if nc and "nc:" not in names_yaml else ""
    )
    spec = load_data_yaml(_write_yaml(tmp_path, text))
    assert spec.names == expected
    assert spec.nc == len(expected)


@pytest.mark.parametrize(
    "body, fragments",
    [
        ("names: {0: cat, 2: bird}", ["'names'", "missing ids [1]"]),
        ("names: {0: cat, 3: bird, 4: x}", ["missing ids [1, 2]"]),
        ("names: [cat, dog]\nnc: 3", ["'nc' is 3", "lists 2 classes"]),
        ("names: cat", ["'names' must be a list"]),
        ("names: []", ["'names' is empty"]),
        ("nc: two", ["'nc' must be a positive integer"]),
        ("train: images/train", ["'names' is missing"]),
        ("names: {a: cat}", ["dict keys must be integer"]),
    ],
)
def test_names_errors(tmp_path, layout, body, fragments):
    text = f"path: {layout}\n" + ("" if "train:" in body else "train: images/train\n") + body + "\n"
    yaml_path = _write_yaml(tmp_path, text)
    with pytest.raises(DatasetError) as e:
        load_data_yaml(yaml_path)
    msg = str(e.value)
    assert str(yaml_path) in msg
    for frag in fragments:
        assert frag in msg


def test_invalid_yaml_names_line(tmp_path):
    yaml_path = _write_yaml(tmp_path, "train: images\nnames: [a, b\nval: x\n")
    with pytest.raises(DatasetError, match=r"data\.yaml:\d+: not valid YAML"):
        load_data_yaml(yaml_path)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_not_a_mapping(tmp_path, text):
    with pytest.raises(DatasetError, match="expected a mapping"):
        load_data_yaml(_write_yaml(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="data.yaml not found"):
        load_data_yaml(tmp_path / "nope" / "data.yaml")


@pytest.mark.parametrize(
    "train_value, n_images",
    [
        ("images/train", 3),  # folder, searched recursively; notes.md is not an image
        ("[images/train, images/val]", 5),  # a list of folders
        ("train.txt", 3),  # ./ lines relative to the .txt, plain relative lines, absolute lines
        ("[train.txt, images/train]", 5),  # a list mixing both, duplicates removed
    ],
)
def test_split_forms(tmp_path, layout, train_value, n_images):
    spec = load_data_yaml(_write_yaml(tmp_path, f"path: {layout}\ntrain: {train_value}\nnames: [a]\n"))
    images = list_split_images(spec, "train")
    assert len(images) == n_images
    assert all(p.is_absolute() and p.exists() for p in images)
    assert images == sorted(images)


def test_path_relative_to_yaml_folder(layout):
    spec = load_data_yaml(
        _write_yaml(layout / "cfg", "path: ..\ntrain: images/train\nval: images/val\nnames: [a]\n")
    )
    assert spec.root == layout.resolve()
    assert [p.name for p in list_split_images(spec, "val")] == ["d.jpg", "e.bmp"]


def test_no_path_means_yaml_folder(layout):
    spec = load_data_yaml(_write_yaml(layout, "train: images/train\nnames: [a]\n"))
    assert spec.root == layout.resolve()
    assert spec.notes == []


def test_roboflow_paths_resolved_with_note(tmp_path):
    ds = tmp_path / "export"
    for split in ("train", "valid"):
        _touch(ds / split / "images" / "x.jpg")
    yaml_path = _write_yaml(
        ds, "train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnc: 1\nnames: ['fire']\n"
    )
    spec = load_data_yaml(yaml_path)
    assert spec.split_sources["train"] == [(ds / "train" / "images").resolve()]
    assert spec.split_sources["val"] == [(ds / "valid" / "images").resolve()]
    assert "test" not in spec.split_sources  # named but absent: dropped with a note
    assert sum("Roboflow" in n for n in spec.notes) == 2
    assert any(n.startswith("test:") and "ignored" in n for n in spec.notes)


def test_missing_split_names_key_and_paths(tmp_path, layout):
    yaml_path = _write_yaml(
        tmp_path, f"path: {layout}\ntrain: images/train\nval: ../nowhere/images\nnames: [a]\n"
    )
    with pytest.raises(DatasetError) as e:
        load_data_yaml(yaml_path)
    msg = str(e.value)
    assert (
        "key 'val'" in msg
        and str(layout / "../nowhere/images") in msg
        and str(layout / "nowhere/images") in msg
    )


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="key 'path'"):
        load_data_yaml(_write_yaml(tmp_path, "path: does-not-exist\ntrain: x\nnames: [a]\n"))


def test_unknown_split_lists_valid(tmp_path, layout):
    spec = load_data_yaml(_write_yaml(tmp_path, f"path: {layout}\ntrain: images/train\nnames: [a]\n"))
    with pytest.raises(DatasetError, match=r"no split 'val' \(splits found: train\)"):
        list_split_images(spec, "val")


def test_non_images_reported_by_split_files(tmp_path):
    ds = tmp_path / "ds"
    _touch(ds / "test" / "images" / "a.jpg")
    _touch(ds / "test" / "z.mp4")
    _touch(ds / "test" / "labels.cache")
    spec = load_data_yaml(_write_yaml(ds, "test: test/images\nnames: [a]\n"))
    images, others = split_files(spec, "test")
    assert [p.name for p in images] == ["a.jpg"]
    assert [p.name for p in others] == ["z.mp4"]  # caches beside images/ are not reported


@pytest.mark.parametrize(
    "image, label",
    [
        ("/d/images/train/a.jpg", "/d/labels/train/a.txt"),
        ("/d/images/a.b.JPG", "/d/labels/a.b.txt"),
        ("/images/x/images/y/a.png", "/images/x/labels/y/a.txt"),  # the last images/ component
        ("/d/train/a.jpg", "/d/train/a.txt"),  # no images/ folder: beside the image
        ("/d/images.x/a.jpg", "/d/images.x/a.txt"),
    ],
)
def test_label_path_for(image, label):
    assert label_path_for(Path(image)) == Path(label)


def test_fire_seg_roboflow(fire_seg):
    spec = load_data_yaml(fire_seg / "data.yaml")
    assert spec.names == ["fire"]
    assert set(spec.split_sources) == {"train", "val", "test"}
    assert len(spec.notes) == 3 and all("Roboflow" in n for n in spec.notes)
    assert [len(list_split_images(spec, s)) for s in ("train", "val", "test")] == [200, 50, 4]
    assert [p.name for p in split_files(spec, "test")[1]] == ["z.mp4"]


def test_coco128_seg(coco128_seg):
    spec = load_data_yaml(coco128_seg / "data.yaml")
    assert spec.nc == 80 and spec.names[0] == "person" and spec.names[-1] == "toothbrush"
    assert spec.root == coco128_seg.resolve()
    assert len(list_split_images(spec, "train")) == 128
    assert spec.split_sources["train"] == spec.split_sources["val"]
