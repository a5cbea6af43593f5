#!/usr/bin/env bash
# The GPU suite: bench_train_loop.py and bench_val.py at 640 px on CUDA with AMP for every native architecture
# and Mask R-CNN (YOLO11n-seg against plain Ultralytics too), one markdown table at the end.
#
#   bash scripts/bench/gpu_suite.sh [OUT_DIR]        # default: work_dirs/gpu_suite
#
# Environment: PYTHON (default .venv/bin/python), DATA (default ../shared/datasets/fire-seg/data.yaml),
# EPOCHS (3), TRAIN_IMAGES (0 = all), VAL_IMAGES (0 = all), BATCH (16), IMGSZ (640), WORKERS (8),
# INSTSEG_MMDET_PYTHON (the MMDetection environment; its rows are skipped with the reason when absent).
set -u -o pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-work_dirs/gpu_suite}
PY=${PYTHON:-.venv/bin/python}
DATA=${DATA:-../shared/datasets/fire-seg/data.yaml}
EPOCHS=${EPOCHS:-3}
TRAIN_IMAGES=${TRAIN_IMAGES:-0}
VAL_IMAGES=${VAL_IMAGES:-0}
BATCH=${BATCH:-16}
IMGSZ=${IMGSZ:-640}
WORKERS=${WORKERS:-8}
mkdir -p "$OUT"
export PYTHONPATH=src

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: the GPU suite needs one')" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>/dev/null || true

# arch model batch: every native architecture, Mask R-CNN, and YOLO through Ultralytics
CASES=(
  "rtmdet-ins tiny $BATCH"
  "rtmdet-ins s $BATCH"
  "solov2 nano $BATCH"
  "solov2 light-r18 $BATCH"
  "maskrcnn r50-fpn $((BATCH / 2))"
  "yolo11-seg n $BATCH"
)
status=0
for c in "${CASES[@]}"; do
  read -r arch model batch <<< "$c"
  tag="${arch}_${model}"
  echo "== train loop: $arch $model (batch $batch, imgsz $IMGSZ, $EPOCHS epochs)"
  "$PY" scripts/bench/bench_train_loop.py --data "$DATA" --arch "$arch" --model "$model" --imgsz "$IMGSZ" \
      --batch "$batch" --epochs "$EPOCHS" --train-images "$TRAIN_IMAGES" --val-images "$VAL_IMAGES" \
      --workers "$WORKERS" --device 0 --amp --keep "$OUT/run_$tag" --json "$OUT/train_$tag.json" \
      2>&1 | tee "$OUT/train_$tag.log" || status=1
  if [[ "$arch" != yolo* ]]; then
    weights="$OUT/run_$tag/weights/best.pt"
    [[ -f "$weights" ]] || weights="$OUT/run_$tag/weights/last.pt"
    echo "== validation: $arch $model ($weights)"
    "$PY" scripts/bench/bench_val.py --data "$DATA" --arch "$arch" --model "$model" --imgsz "$IMGSZ" \
        --batch "$batch" --val-images "$VAL_IMAGES" --workers "$WORKERS" --device 0 --weights "$weights" \
        --json "$OUT/val_$tag.json" 2>&1 | tee "$OUT/val_$tag.log" || status=1
  fi
done

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def g(d, *keys):
    for k in keys:
        d = (d or {}).get(k)
    return d
def f(v, fmt=".2f"):
    return format(v, fmt) if isinstance(v, (int, float)) else "-"
lines = ["| architecture | instseg img/s | reference | reference img/s | epoch time ratio | val s/pass (instseg / ref) | "
         "val s/image (instseg / ref) | val ratio |", "|---|---|---|---|---|---|---|---|"]
for t in sorted(out.glob("train_*.json")):
    tag = t.stem[len("train_"):]
    tr = json.loads(t.read_text())
    v = json.loads((out / f"val_{tag}.json").read_text()) if (out / f"val_{tag}.json").exists() else {}
    lines.append(f"| {tag} | {f(g(tr, 'instseg', 'ips_later'))} | {g(tr, 'reference', 'name') or '-'} | "
                 f"{f(g(tr, 'reference', 'ips_later'))} | {f(tr.get('time_ratio_epoch'), '.3f')} | "
                 f"{f(g(tr, 'instseg', 'val_s'))} / {f(g(tr, 'reference', 'val_s'))} | "
                 f"{f(g(v, 'instseg', 's_per_image'), '.4f')} / {f(g(v, 'reference', 's_per_image'), '.4f')} | "
                 f"{f(v.get('ratio'), '.3f')} |")
gpu = (out / "gpu.txt").read_text().strip() if (out / "gpu.txt").exists() else "unknown GPU"
text = f"GPU suite on {gpu}\n\n" + "\n".join(lines) + "\n"
(out / "table.md").write_text(text)
print(text)
EOF
exit $status
