"""Record MMDetection 3.3.0's SOLOv2 state_dict keys and shapes, per size, into the test fixture.

Run: PYTHONPATH=src /tmp/mmenv/bin/python scripts/record_mmdet_solov2_keys.py
Writes tests/models/fixtures/solov2_keys.json.gz: {size: {key: [shape...]}} with 80 classes; the mmdet sizes
come from MMDetection's own config files, instseg's sizes from the mmdet config dict that
scripts/compare_mmdet_solov2.py builds for them.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def main() -> int:
    from compare_mmdet_solov2 import mmdet_model_cfg
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from instseg.models.solov2.config import SOLOV2_SIZES

    register_all_modules()
    out = {}
    for size in SOLOV2_SIZES:
        cfg = mmdet_model_cfg(size)
        cfg.mask_head.num_classes = 80
        model = MODELS.build(cfg)
        out[size] = {k: list(v.shape) for k, v in model.state_dict().items()}
        print(f"{size}: {len(out[size])} keys")
    path = REPO / "tests" / "models" / "fixtures" / "solov2_keys.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"mmdet_version": "3.3.0", "num_classes": 80, "sizes": out}, f, indent=0)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
