"""Benchmark: ``instseg convert yolo2coco`` against a baseline that decodes every image to learn its size.

Both sides turn one split of a YOLO dataset (default: coco128-seg, train) into the same COCO JSON:

* instseg, cold: ``yolo2coco(..., use_cache=False)``: image sizes from file headers (EXIF honoured), the
  dataset checks of ``instseg doctor`` (Pillow ``verify``, truncated-JPEG test, label-line checks), masks
  rasterized for the areas, JSON written;
* instseg, cached: ``yolo2coco`` again with the scan cache (what a second conversion costs);
* baseline: every image opened fully with ``cv2.imread`` (EXIF honoured) for its size, labels parsed with
  the same parser, the same ``records_to_coco`` and JSON writer. It does no dataset checks.

Images per second are the best of ``--repeat`` runs; the ratios are taken in the same run. The two JSONs
must have the same images (sizes) and annotations, else the script exits 1.

    .venv/bin/python scripts/bench/bench_convert.py [--data ../shared/datasets/coco128-seg/data.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def baseline(data: Path, split: str, out: Path) -> Path:
    """The naive conversion: full decode of every image for its size, then the same COCO writer."""
    import cv2

    from instseg.data.coco import records_to_coco, write_json_atomic
    from instseg.data.convert import common_image_root
    from instseg.data.types import ImageRecord
    from instseg.data.yaml_config import label_path_for, list_split_images, load_data_yaml
    from instseg.data.yolo import parse_yolo_labels

    spec = load_data_yaml(data)
    records = []
    for n, image in enumerate(list_split_images(spec, split)):
        pixels = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if pixels is None:
            continue
        h, w = pixels.shape[:2]
        label = label_path_for(image)
        instances = parse_yolo_labels(label, w, h, spec.nc)[0] if label.is_file() else []
        records.append(ImageRecord(image, w, h, instances, label if label.is_file() else None, n + 1))
    coco = records_to_coco(records, spec.names, image_root=common_image_root(records, spec.root))
    return write_json_atomic(out / f"{split}.json", coco)


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/datasets/coco128-seg/data.yaml")
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()

    from instseg.data.convert import yolo2coco

    with tempfile.TemporaryDirectory() as tmp:
        out_i, out_c, out_b = Path(tmp, "instseg"), Path(tmp, "cached"), Path(tmp, "baseline")
        yolo2coco(a.data, out_c, splits=[a.split])  # fills the scan cache (and imports everything once)
        t_cold = best_time(lambda: yolo2coco(a.data, out_i, splits=[a.split], use_cache=False), a.repeat)
        t_cached = best_time(lambda: yolo2coco(a.data, out_c, splits=[a.split]), a.repeat)
        t_base = best_time(lambda: baseline(a.data, a.split, out_b), a.repeat)
        ours = json.loads((out_i / f"{a.split}.json").read_text())
        base = json.loads((out_b / f"{a.split}.json").read_text())

    n = len(ours["images"])
    same_images = [(i["file_name"], i["width"], i["height"]) for i in ours["images"]] == [
        (i["file_name"], i["width"], i["height"]) for i in base["images"]
    ]
    same_anns = ours["annotations"] == base["annotations"]
    print(
        f"yolo2coco on {a.data} split '{a.split}': {n} images, {len(ours['annotations'])} annotations "
        f"(best of {a.repeat})"
    )
    print(f"  instseg, cold (headers + checks): {t_cold:8.3f} s  {n / t_cold:9.1f} images/s")
    print(f"  instseg, scan cache:              {t_cached:8.3f} s  {n / t_cached:9.1f} images/s")
    print(f"  baseline (cv2.imread every image):{t_base:8.3f} s  {n / t_base:9.1f} images/s")
    print(f"  speed-up over the baseline: cold {t_base / t_cold:.2f}x, cached {t_base / t_cached:.2f}x")
    print(f"  same images and sizes: {same_images}; same annotations: {same_anns}")
    return 0 if same_images and same_anns else 1


if __name__ == "__main__":
    sys.exit(main())
