#!/usr/bin/env bash
# GPU check for a lent GPU machine (see the `device` notes): a short single-GPU YOLOv5 training run through
# the launcher, and the same training through `python -m yolov5.train` directly on the same prepared data,
# then images/s of both and their ratio (target: the launcher within 5%). Then, when 2+ GPUs are visible,
# the distributed preflight with NCCL and a 2-GPU DDP run through the launcher. Then the ultralytics trainer
# (issue 13): one GPU (AMP on, its check skipped offline; no "New cache created"), and with 2+ GPUs a 2-process
# DDP run (standalone) and two torchrun agents on 127.0.0.1 meeting at a c10d rendezvous, one GPU each, as two
# nodes (the global rank / world size plumbing of YololakeTrainer with NCCL).
#
#   bash scripts/gpu_check.sh    # knobs: FRAMES (4000) EPOCHS (3) IMG (320) BATCH (64) OUT (/tmp/yololake_gpu)
#                                #        DEVICE (0; DEVICE=cpu FRAMES=60 IMG=128 rehearses the script without a GPU)
#
# Compared: images/s over the trainer process's wall time (YOLOv5 start, dataset init, training, final
# validation; the launcher's own staging/cache step is printed apart), and over YOLOv5's training loop
# ("N epochs completed in H hours", 3 decimals: coarse for short runs, so raise EPOCHS for a firm number).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
FRAMES="${FRAMES:-4000}" EPOCHS="${EPOCHS:-3}" IMG="${IMG:-320}" BATCH="${BATCH:-64}" DEVICE="${DEVICE:-0}"
OUT="${OUT:-/tmp/yololake_gpu}"
rm -rf "$OUT" && mkdir -p "$OUT"
export YOLOLAKE_STAGE_DIR="$OUT/stage" OMP_NUM_THREADS=4

if [[ "$DEVICE" == cpu ]]; then
    NGPU=0
else
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || { echo "no GPU visible"; exit 1; }
    NGPU="$(nvidia-smi --list-gpus | wc -l)"
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count())'

"$PY" "$ROOT/scripts/bench_label_cache.py" --frames "$FRAMES" --size 640x480 --dir "$OUT/data" --generate-only
TRAIN_FRAMES=$(wc -l < "$OUT/data/train.txt")

# 1) Through the launcher (stages nothing: the dataset is local; prebuilds the caches).
t0=$(date +%s.%N)
"$ROOT/.venv/bin/yololake" train --data "$OUT/data" --model yolov5n --epochs "$EPOCHS" --img "$IMG" \
    --batch-size "$BATCH" --device "$DEVICE" --project "$OUT/runs" --name launcher -- --workers 8 --noplots \
    2>&1 | tee "$OUT/launcher.log" | grep -E "yololake train|all " || true
t1=$(date +%s.%N)
YAML="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["dataset"]["yaml"])' \
    "$OUT/runs/launcher/yololake_run.json")"
[[ -f "$OUT/runs/launcher/weights/best.pt" ]] || { echo "launcher run failed, see $OUT/launcher.log"; exit 1; }

# 2) The same training directly (same YAML; remove our caches so YOLOv5 does what it does without us).
rm -f "$(dirname "$YAML")"/*.cache
CFG="$("$PY" -c 'import yolov5, os; print(os.path.join(os.path.dirname(yolov5.__file__), "models", "yolov5n.yaml"))')"
t2=$(date +%s.%N)
YOLOV5_CONFIG_DIR="$OUT/stage/yolov5_config" TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$PY" -m yolov5.train \
    --data "$YAML" --weights '' --cfg "$CFG" --epochs "$EPOCHS" --img "$IMG" --batch-size "$BATCH" --device "$DEVICE" \
    --project "$OUT/runs" --name direct --exist-ok --workers 8 --noplots > "$OUT/direct.log" 2>&1
t3=$(date +%s.%N)

"$PY" - "$t0" "$t1" "$t2" "$t3" "$TRAIN_FRAMES" "$EPOCHS" "$OUT" <<'PYEOF'
import json, re, sys
t0, t1, t2, t3, frames, epochs, out = sys.argv[1:]
t0, t1, t2, t3, frames, epochs = map(float, (t0, t1, t2, t3, frames, epochs))
trainer = json.load(open(f"{out}/runs/launcher/yololake_run.json"))["trainer_seconds"]
def trainer_seconds(log):
    # YOLOv5 prints "N epochs completed in H hours." : the training loop itself
    m = re.search(r"epochs completed in ([0-9.]+) hours", open(log, errors="replace").read())
    return float(m.group(1)) * 3600 if m else float("nan")
a, b = trainer_seconds(f"{out}/launcher.log"), trainer_seconds(f"{out}/direct.log")
print(f"train images: {int(frames)} x {int(epochs)} epochs")
print(f"launcher: {frames * epochs / trainer:8.1f} images/s over the trainer ({trainer:.1f}s; launcher total "
      f"{t1 - t0:.1f}s incl. staging + caches); {frames * epochs / a:8.1f} images/s in the training loop")
print(f"direct:   {frames * epochs / (t3 - t2):8.1f} images/s over the trainer ({t3 - t2:.1f}s); "
      f"{frames * epochs / b:8.1f} images/s in the training loop")
print(f"ratio launcher/direct images/s: {(t3 - t2) / trainer:.3f} over the trainer, {b / a:.3f} in the loop "
      "(target >= 0.95)")
PYEOF

if [[ "$DEVICE" == cpu ]]; then
    echo "DEVICE=cpu rehearsal: no GPU numbers"
elif [[ "$NGPU" -ge 2 ]]; then
    "$ROOT/.venv/bin/yololake" train --data "$OUT/data" --model yolov5n --epochs 1 --img "$IMG" \
        --batch-size "$BATCH" --nproc-per-node 2 --project "$OUT/runs" --name ddp -- --workers 4 --noplots \
        2>&1 | grep -E "yololake (train|preflight)|all " || true
else
    echo "only $NGPU GPU visible: DDP (2+ processes on GPUs) and the NCCL preflight are not checked here"
fi

# 3) The ultralytics trainer (issue 13) on the same data.
ULTRA=(--trainer ultralytics --data "$OUT/data" --model yolov8n.yaml --img "$IMG" --batch-size "$BATCH")
"$ROOT/.venv/bin/yololake" train "${ULTRA[@]}" --epochs "$EPOCHS" --device "$DEVICE" --project "$OUT/runs" \
    --name ultralytics -- workers=8 plots=False > "$OUT/ultralytics.log" 2>&1 || { echo "ultralytics run failed"; exit 1; }
grep -E "yololake train|AMP|New cache created|all " "$OUT/ultralytics.log" || true
! grep -q "New cache created" "$OUT/ultralytics.log" || { echo "ultralytics rebuilt the cache"; exit 1; }
if [[ "$DEVICE" != cpu && "$NGPU" -ge 2 ]]; then
    "$ROOT/.venv/bin/yololake" train "${ULTRA[@]}" --epochs 1 --nproc-per-node 2 --project "$OUT/runs" \
        --name ultralytics_ddp -- workers=4 plots=False 2>&1 | grep -E "yololake (train|trainer|preflight)|all " || true
    for NODE in 0 1; do  # two "nodes" (agents), one GPU each, own stage dir and run folder
        CUDA_VISIBLE_DEVICES=$NODE YOLOLAKE_STAGE_DIR="$OUT/stage_node$NODE" "$ROOT/.venv/bin/yololake" train \
            "${ULTRA[@]}" --epochs 1 --nnodes 2 --nproc-per-node 1 --rdzv-endpoint 127.0.0.1:29731 --rdzv-id gpu \
            --project "$OUT/runs_node$NODE" --name c10d -- workers=4 plots=False > "$OUT/c10d_node$NODE.log" 2>&1 &
    done
    wait
    grep -hE "yololake (train|trainer|preflight)|all " "$OUT"/c10d_node*.log || true
    ls "$OUT"/runs_node*/c10d/results.csv  # exactly one: global rank 0's node
fi
