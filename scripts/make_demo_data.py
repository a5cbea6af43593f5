"""Write the synthetic demo dataset.

python scripts/make_demo_data.py [OUT] [--train N] [--val N] [--imgsz PX] [--seed S]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description="Write instseg's synthetic YOLO-seg demo dataset.")
    parser.add_argument(
        "out", nargs="?", default="demo_data", type=Path, help="output folder (default: demo_data)"
    )
    parser.add_argument("--train", type=int, default=24, help="number of training images")
    parser.add_argument("--val", type=int, default=8, help="number of validation images")
    parser.add_argument("--imgsz", type=int, default=256, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same dataset)")
    args = parser.parse_args()

    from instseg.data.demo import make_demo_dataset

    print(make_demo_dataset(args.out, n_train=args.train, n_val=args.val, imgsz=args.imgsz, seed=args.seed))


if __name__ == "__main__":
    main()
