"""Record MMDetection's RTMDet-Ins state-dict keys and shapes per size into
tests/models/fixtures/rtmdet_ins_keys.json.gz (run in an MMDetection 3.3 environment):

    PYTHONPATH=src:scripts /tmp/mmenv/bin/python scripts/record_mmdet_keys.py
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
OUT = Path(__file__).resolve().parents[1] / "tests" / "models" / "fixtures" / "rtmdet_ins_keys.json.gz"


def main() -> None:
    import mmcv
    import mmdet
    from mmdet_rtmdet_ins_env import CONFIG_NAMES, build_mmdet_rtmdet_ins

    record = {"mmdet": mmdet.__version__, "mmcv": mmcv.__version__, "num_classes": 80, "sizes": {}}
    for size in CONFIG_NAMES:
        model, cfg_path = build_mmdet_rtmdet_ins(size, 80)
        state = model.state_dict()
        params = sum(p.numel() for p in model.parameters())
        record["sizes"][size] = {
            "config": cfg_path.name,
            "params": params,
            "keys": {k: list(v.shape) for k, v in state.items()},
        }
        print(f"{size}: {len(state)} keys, {params} parameters ({cfg_path.name})")
    with gzip.open(OUT, "wt") as f:
        json.dump(record, f, indent=0, sort_keys=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
