"""Reading a YOLO ``data.yaml`` (Ultralytics conventions, Roboflow exports) into a :class:`DatasetSpec`.

Rules (those of Ultralytics, made explicit):

* ``path``: the dataset root. Relative to the folder holding the YAML; absent -> that folder itself.
* ``train`` / ``val`` / ``test``: each a folder of images (searched recursively), a ``.txt`` file listing
  image paths (one per line; ``./x.jpg`` is relative to the ``.txt``'s folder, other relative lines are tried
  against the ``.txt``'s folder then the root; absolute lines as they are), or a list of these.
  ``train`` is required for training and ``val`` for evaluation, but neither is required here: ``doctor``
  reports what is missing.
* Roboflow writes ``train: ../train/images`` next to the YAML (meant relative to a ``path`` one level down).
  When such an entry does not exist, the leading ``../`` is dropped and the entry is tried again against the
  root; the resolution is recorded in :attr:`DatasetSpec.notes`.
* ``names``: a list, or a dict ``{0: name, 1: name}`` whose keys must be exactly ``0..n-1``.
  ``nc`` is optional; when present it must equal the number of names. Only ``nc`` -> names ``class0..``.
* The image of a label file: replace the last ``/images/`` path component by ``/labels/`` and the suffix by
  ``.txt`` (see :func:`label_path_for`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from instseg.errors import DatasetError

# Ultralytics' IMG_FORMATS (lower-case suffixes without the dot).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
OPTIONAL_SPLITS: frozenset[str] = frozenset({"test"})


@dataclass
class DatasetSpec:
    """A resolved data.yaml: absolute paths, contiguous class names.

    ``split_sources[split]`` lists the existing folders and ``.txt`` files of that split (absolute paths).
    ``notes`` says what was resolved in a way the user might not expect (Roboflow paths, skipped splits).
    """

    yaml_path: Path
    root: Path
    names: list[str]
    split_sources: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def nc(self) -> int:
        return len(self.names)


def is_image_file(path: Path) -> bool:
    """True when ``path``'s suffix is one of the image formats instseg reads (case-insensitive)."""
    return path.suffix[1:].lower() in IMAGE_SUFFIXES


def label_path_for(image_path: Path) -> Path:
    """The YOLO label file of an image: the last ``images`` folder becomes ``labels``, suffix ``.txt``.

    ``ds/images/train/a.jpg`` -> ``ds/labels/train/a.txt``. An image not under an ``images`` folder gets
    its label beside it (``dir/a.jpg`` -> ``dir/a.txt``), as Ultralytics does. (String operations: this
    runs for every image of every scan.)
    """
    s = os.fspath(image_path)
    sep = os.sep
    a, b = f"{sep}images{sep}", f"{sep}labels{sep}"
    i = s.rfind(a)
    if i >= 0:
        s = s[:i] + b + s[i + len(a) :]
    elif s.startswith(f"images{sep}"):
        s = f"labels{sep}" + s[len(a) - 1 :]
    stem, _ = os.path.splitext(s)
    return Path(stem + ".txt")


def _yaml_error(path: Path, e: Exception) -> DatasetError:
    mark = getattr(e, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = " ".join((getattr(e, "problem", None) or str(e)).split())  # one line, whatever PyYAML wrote
    return DatasetError(
        f"{where}: not valid YAML ({problem}); fix the syntax (e.g. quote names with ':' or '#')"
    )


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DatasetError(f"{path}: data.yaml not found; pass the path of your dataset's data.yaml") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read the file ({e})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _yaml_error(path, e) from e
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: expected a mapping with keys path/train/val/names, got {type(data).__name__}"
        )
    return data


def _parse_names(yaml_path: Path, data: dict) -> tuple[list[str], list[str]]:
    """(names, notes) from ``names`` / ``nc``; raises DatasetError on gaps or mismatches."""
    notes: list[str] = []
    raw = data.get("names")
    nc = data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 1):
        raise DatasetError(f"{yaml_path}: key 'nc' must be a positive integer, got {nc!r}")
    if raw is None:
        if nc is None:
            raise DatasetError(f"{yaml_path}: key 'names' is missing; add e.g. names: [cat, dog]")
        notes.append(f"no 'names' in data.yaml: classes named class0..class{nc - 1}")
        return [f"class{i}" for i in range(nc)], notes
    if isinstance(raw, dict):
        try:
            keyed = {int(k): v for k, v in raw.items()}
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{yaml_path}: key 'names': dict keys must be integer class ids ({e})") from e
        if not keyed:
            raise DatasetError(f"{yaml_path}: key 'names' is empty")
        want = set(range(max(max(keyed) + 1, len(keyed))))
        missing = sorted(want - set(keyed))
        extra = sorted(k for k in keyed if k < 0)
        if missing or extra:
            raise DatasetError(
                f"{yaml_path}: key 'names': class ids must be 0..{len(want) - 1} without gaps; "
                f"missing ids {missing}{f', negative ids {extra}' if extra else ''} "
                "(renumber the classes, and their label files, to be contiguous from 0)"
            )
        names = [keyed[i] for i in range(len(keyed))]
    elif isinstance(raw, (list, tuple)):
        names = list(raw)
    else:
        raise DatasetError(f"{yaml_path}: key 'names' must be a list or a {{id: name}} dict, got {raw!r}")
    if not names:
        raise DatasetError(f"{yaml_path}: key 'names' is empty; list at least one class")
    names = [str(n) for n in names]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        notes.append(f"duplicate class names {dup}: they stay separate classes")
    if nc is not None and nc != len(names):
        raise DatasetError(
            f"{yaml_path}: key 'nc' is {nc} but 'names' lists {len(names)} classes; fix nc or names"
        )
    return names, notes


def _resolve_entry(yaml_path: Path, root: Path, key: str, entry: str) -> tuple[Path | None, list[Path], str]:
    """(existing path or None, paths tried, note) for one entry of a split."""
    p = Path(os.path.expanduser(str(entry)))
    tried = [p if p.is_absolute() else (root / p)]
    if tried[0].exists():
        return tried[0].resolve(), tried, ""
    s = str(entry).replace("\\", "/")
    if not p.is_absolute() and s.startswith("../"):
        alt = root / s[3:]
        tried.append(alt)
        if alt.exists():
            note = (
                f"{key}: '{entry}' resolved to {alt.resolve()} (Roboflow-style path: it does not exist "
                f"relative to {root}, so the leading '../' was dropped)"
            )
            return alt.resolve(), tried, note
    return None, tried, ""


def load_data_yaml(path: str | Path) -> DatasetSpec:
    """Parse and resolve a data.yaml. Raises :class:`DatasetError` naming the file and the key at fault.

    A split key whose paths do not exist raises (naming the paths tried), except ``test``, which is
    dropped with a note (Roboflow exports often name a test folder they do not ship).
    """
    yaml_path = Path(path).expanduser().resolve()
    data = _read_yaml(yaml_path)
    names, notes = _parse_names(yaml_path, data)
    raw_root = data.get("path")
    if raw_root in (None, ""):
        root = yaml_path.parent
    elif not isinstance(raw_root, str) or len(raw_root) > 4096:
        raise DatasetError(f"{yaml_path}: key 'path' must be a folder (a string), got {str(raw_root)[:60]!r}")
    else:
        root = Path(os.path.expanduser(str(raw_root)))
        root = (root if root.is_absolute() else yaml_path.parent / root).resolve()
        if not root.is_dir():
            raise DatasetError(
                f"{yaml_path}: key 'path': folder {root} does not exist; fix 'path' or remove it"
            )
    sources: dict[str, list[Path]] = {}
    for key in SPLITS:
        value = data.get(key)
        if value in (None, "", []):
            continue
        entries = value if isinstance(value, (list, tuple)) else [value]
        found: list[Path] = []
        tried_all: list[Path] = []
        bad = [e for e in entries if not isinstance(e, (str, int)) or isinstance(e, bool) or len(str(e)) > 4096]
        if bad:
            raise DatasetError(f"{yaml_path}: key '{key}' must be a folder, a .txt list or a list of these "
                               f"(strings), got {str(bad[0])[:60]!r}")
        for entry in entries:
            if not isinstance(entry, (str, Path)):
                raise DatasetError(f"{yaml_path}: key '{key}': expected a folder or .txt path, got {entry!r}")
            hit, tried, note = _resolve_entry(yaml_path, root, key, entry)
            tried_all += tried
            if hit is None:
                continue
            if note:
                notes.append(note)
            if hit.is_file() and hit.suffix.lower() != ".txt":
                raise DatasetError(f"{yaml_path}: key '{key}': {hit} is a file but not a .txt list of images")
            found.append(hit)
        missing = len(found) < len(entries)
        if missing and key in OPTIONAL_SPLITS and not found:
            notes.append(f"{key}: none of {[str(t) for t in tried_all]} exists; split '{key}' ignored")
            continue
        if missing:
            raise DatasetError(
                f"{yaml_path}: key '{key}': path not found; tried {', '.join(str(t) for t in tried_all)} "
                f"(paths are relative to 'path' = {root}); fix the path in data.yaml"
            )
        sources[key] = found
    return DatasetSpec(yaml_path=yaml_path, root=root, names=names, split_sources=sources, notes=notes)


def _read_list_file(txt: Path, root: Path) -> list[Path]:
    out: list[Path] = []
    try:
        lines = txt.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{txt}: cannot read the image list ({e})") from e
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        p = Path(os.path.expanduser(s))
        if p.is_absolute():
            out.append(p)
        elif s.startswith("./"):
            out.append((txt.parent / s[2:]).resolve())
        else:
            cand = txt.parent / p
            out.append((cand if cand.exists() else root / p).resolve())
    return out


def split_files(spec: DatasetSpec, split: str) -> tuple[list[Path], list[Path]]:
    """(image files, other files) of a split, sorted, without duplicates.

    Other files are those found in the split's folders that are not images (e.g. a stray ``.mp4``), plus
    plain files beside an ``images`` folder of a split folder (``test/z.mp4`` next to ``test/images``), except
    caches; files beside an ``images`` folder at the dataset root (data.yaml, READMEs) are not listed.
    Listed images that do not exist are kept: the checks report them.
    """
    if split not in spec.split_sources:
        valid = ", ".join(spec.split_sources) or "none"
        raise DatasetError(
            f"{spec.yaml_path}: no split '{split}' (splits found: {valid}); add the key '{split}'"
        )
    images: list[Path] = []
    others: list[Path] = []
    for src in spec.split_sources[split]:
        if src.is_file():
            images += _read_list_file(src, spec.root)
            continue
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fname in filenames:
                if fname.startswith("."):  # hidden files (.DS_Store, editor swap files) are not reported
                    continue
                f = Path(dirpath) / fname
                (images if is_image_file(f) else others).append(f)
        if src.name == "images" and src.parent not in (spec.root, spec.yaml_path.parent):
            for f in src.parent.iterdir():
                if f.is_file() and not f.name.endswith(".cache") and not is_image_file(f):
                    others.append(f)
    return sorted(dict.fromkeys(images)), sorted(dict.fromkeys(others))


def list_split_images(spec: DatasetSpec, split: str) -> list[Path]:
    """Absolute paths of the images of a split, sorted (files with image suffixes only)."""
    return split_files(spec, split)[0]
