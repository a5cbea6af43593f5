"""Mask images -> COCO JSON (``instseg convert masks2coco``).

Two layouts are read, chosen per image by what exists in the masks folder (``<stem>`` = image file name
without its extension):

1. **Instance-id PNG** ``<masks>/<stem>.png``, or under one of the usual names ``<stem>_mask.png`` (the
   layout of torchvision's Mask R-CNN tutorial), ``<stem>-mask.png``, ``<stem>_masks.png``,
   ``<stem>_instanceIds.png`` (Cityscapes: ``<city>_<seq>_<frame>_leftImg8bit`` images have
   ``..._gtFine_instanceIds.png`` masks, whose values below 1000 are class regions, not instances), or a
   ``mask_pattern`` of the user's (``{stem}`` stands for the stem): one single-channel PNG (8- or 16-bit) the
   size of the image; 0 is background and each other value ``k`` is one instance.
2. **Binary per-instance PNGs** ``<masks>/<stem>_<k>.png`` or ``<masks>/<stem>/<k>.png`` (``k`` an integer):
   one file per instance, any non-zero pixel is inside.

Classes: every instance gets ``class_name``, unless a class map (YAML or JSON ``{"<stem>/<k>": class name}``)
names the class of instance ``k`` of image ``<stem>``; with a class map, instances it does not list get
``class_name`` if one was given, else they are reported and skipped. Masks are written as compressed RLE.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from instseg.data.coco import records_to_coco, write_json_atomic
from instseg.data.masks import mask_to_rle
from instseg.data.types import Finding, ImageRecord, Instance, Severity
from instseg.errors import ConversionError


def read_class_map(path: str | Path) -> dict[str, str]:
    """``{"<stem>/<k>": class name}`` from a YAML or JSON file (keys may also be ``<stem>_<k>``)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConversionError(f"{path}: cannot read the class map ({e})") from e
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConversionError(f"{path}: a class map is a mapping '<image stem>/<instance k>: class name'")
    return {str(k): v for k, v in data.items()}


DEFAULT_MASK_PATTERNS = ("{stem}.png", "{stem}_mask.png", "{stem}-mask.png", "{stem}_masks.png",
                         "{stem}_instanceIds.png", "{city}_gtFine_instanceIds.png")
CITYSCAPES_SUFFIX = "_leftImg8bit"


def mask_patterns(mask_pattern: str | None) -> list[str]:
    """The instance-id file names tried per image, the user's pattern first; ConversionError when it is bad."""
    if mask_pattern is None:
        return list(DEFAULT_MASK_PATTERNS)
    if "{stem}" not in mask_pattern or "/" in mask_pattern.replace("{stem}", "") or ".." in mask_pattern:
        raise ConversionError(f"--mask-pattern {mask_pattern!r}: a file name holding {{stem}} (the image name "
                              "without extension), e.g. '{stem}_label.png'")
    pattern = mask_pattern if Path(mask_pattern).suffix else mask_pattern + ".png"
    return [pattern, *DEFAULT_MASK_PATTERNS]


def _pattern_name(pattern: str, stem: str) -> str | None:
    if "{city}" in pattern:
        if not stem.endswith(CITYSCAPES_SUFFIX):
            return None
        return pattern.replace("{city}", stem[: -len(CITYSCAPES_SUFFIX)])
    return pattern.replace("{stem}", stem)


def _read_mask(path: Path) -> np.ndarray | None:
    """The mask's pixels (None when unreadable); DatasetError for a mask too large to decode (a bomb)."""
    import cv2

    from instseg.data.images import check_image_pixels
    from instseg.data.imagesize import read_image_header
    from instseg.errors import DatasetError

    try:
        header = read_image_header(path)
    except DatasetError as e:
        if "too large to decode" in str(e):
            raise
        return None
    check_image_pixels(path, header.width, header.height)
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _id_png(image: Path, masks_dir: Path, patterns: list[str]) -> Path | None:
    for pattern in patterns:
        name = _pattern_name(pattern, image.stem)
        if name is not None and (masks_dir / name).is_file():
            return masks_dir / name
    return None


def _instance_masks(
    image: Path, masks_dir: Path, stems: set[str], findings: list[Finding], patterns: list[str]
) -> list[tuple[int, np.ndarray, Path]] | None:
    """[(k, binary mask, source file)] for one image (an instance-id PNG wins over binary PNGs); None when
    no mask file of the image exists at all."""
    id_png = _id_png(image, masks_dir, patterns)
    if id_png is not None:
        arr = _read_mask(id_png)
        if arr is None or arr.ndim != 2:
            shape = "unreadable" if arr is None else f"shape {arr.shape}"
            findings.append(
                Finding(
                    Severity.ERROR,
                    "bad-mask",
                    f"instance-id PNG is {shape}; it must be one channel (8- or 16-bit), 0 = background",
                    id_png,
                    action="image skipped",
                )
            )
            return []
        ids = [int(v) for v in np.unique(arr) if v != 0]
        if id_png.stem.endswith("instanceIds") and any(k >= 1000 for k in ids):
            ids = [k for k in ids if k >= 1000]  # Cityscapes: class*1000 + i; values < 1000 are class regions
        return [(k, (arr == k).astype(np.uint8), id_png) for k in ids]
    found: list[tuple[int, Path]] = []
    pattern = re.compile(re.escape(image.stem) + r"_(\d+)")
    for p in masks_dir.glob(f"{image.stem}_*.png"):
        m = pattern.fullmatch(p.stem)
        if m and p.stem not in stems:  # 'a_1.png' is image a_1's own mask when an image a_1 exists
            found.append((int(m.group(1)), p))
    sub = masks_dir / image.stem
    if sub.is_dir():
        found += [(int(p.stem), p) for p in sub.glob("*.png") if p.stem.isdigit()]
    if not found:
        return None
    out = []
    for k, p in sorted(found):
        arr = _read_mask(p)
        if arr is None:
            findings.append(
                Finding(Severity.ERROR, "bad-mask", "unreadable PNG", p, action="instance skipped")
            )
            continue
        if arr.ndim == 3:
            arr = arr.max(axis=2)
        out.append((k, (arr != 0).astype(np.uint8), p))
    return out


def masks2coco(
    images_dir: str | Path,
    masks_dir: str | Path,
    out_json: str | Path,
    *,
    class_map: str | Path | dict[str, str] | None = None,
    class_name: str | None = None,
    mask_pattern: str | None = None,
) -> tuple[Path, list[Finding]]:
    """Write a COCO JSON for the images of ``images_dir`` from the masks in ``masks_dir`` (layouts above).

    Returns the JSON path and the findings (masks of the wrong size, unreadable or empty masks, instances
    with no class). Images without any mask are written as background images, and counted in a finding;
    when *no* image has a mask file, ConversionError shows two mask names seen and the patterns tried (a
    naming mismatch, not a dataset of background images). ``mask_pattern`` (e.g. ``'{stem}_label.png'``) is
    tried before the usual names.
    """
    from instseg.data.imagesize import read_image_size
    from instseg.data.yaml_config import is_image_file

    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_dir, "--images"), (masks_dir, "--masks")):
        if not folder.is_dir():
            raise ConversionError(f"{what} {folder}: not a folder")
    patterns = mask_patterns(mask_pattern)
    cmap = read_class_map(class_map) if isinstance(class_map, (str, Path)) else dict(class_map or {})
    if not cmap and class_name is None:
        class_name = "object"
    names = sorted(set(cmap.values()) | ({class_name} if class_name else set()))
    index = {n: k for k, n in enumerate(names)}
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and is_image_file(p))
    if not images:
        raise ConversionError(f"{images_dir}: no image files found")
    stems = {p.stem for p in images}
    findings: list[Finding] = []
    records: list[ImageRecord] = []
    background = matched = 0
    for image in images:
        try:
            width, height = read_image_size(image)
        except Exception as e:  # noqa: BLE001 - any unreadable header is reported, not raised
            findings.append(
                Finding(
                    Severity.ERROR,
                    "bad-image",
                    f"cannot read the image size ({e})",
                    image,
                    action="image skipped",
                )
            )
            continue
        rec = ImageRecord(path=image, width=width, height=height)
        masks = _instance_masks(image, masks_dir, stems, findings, patterns)
        matched += masks is not None
        for k, mask, src in masks or []:
            if mask.shape != (height, width):
                findings.append(
                    Finding(
                        Severity.ERROR,
                        "mask-size-mismatch",
                        f"mask is {mask.shape[1]}x{mask.shape[0]}, the image {width}x{height}",
                        src,
                        action=f"instance {k} skipped; masks must have the image's size",
                    )
                )
                continue
            if not mask.any():
                findings.append(
                    Finding(
                        Severity.WARNING,
                        "empty-mask",
                        f"instance {k} has no pixel",
                        src,
                        action="instance skipped",
                    )
                )
                continue
            name = cmap.get(f"{image.stem}/{k}", cmap.get(f"{image.stem}_{k}", class_name))
            if name is None:
                findings.append(
                    Finding(
                        Severity.ERROR,
                        "no-class",
                        f"instance {k} of {image.name} is not in the class map",
                        src,
                        action=f"instance skipped; add '{image.stem}/{k}: <class>' or pass --class-name",
                    )
                )
                continue
            rec.instances.append(Instance(cls=index[name], rle=mask_to_rle(mask)))
        background += not rec.instances
        records.append(rec)
    if records and not matched:
        seen = sorted(p.name for p in masks_dir.rglob("*") if p.is_file())[:2]
        tried = ", ".join(p.replace("{city}", "{stem-leftImg8bit}") for p in patterns)
        raise ConversionError(
            f"{masks_dir}: no mask matches any of the {len(records)} images of {images_dir} (image "
            f"{records[0].path.name!r}; masks seen: {', '.join(map(repr, seen)) or 'none'}; names tried: {tried}, "
            "{stem}_<k>.png, {stem}/<k>.png); name the masks like one of these or pass --mask-pattern "
            "'<name with {stem}>'")
    if background:
        findings.append(
            Finding(
                Severity.INFO,
                "background-images",
                f"{background} images have no instance mask",
                masks_dir,
                action="written as background images",
            )
        )
    coco = records_to_coco(records, names, image_root=images_dir)
    return write_json_atomic(out_json, coco), findings
