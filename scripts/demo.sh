#!/usr/bin/env bash
# Set up .venv/, generate a sample data lake under demo/, and turn it into a YOLOv5 dataset with spark-submit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"

rm -rf demo
"$PY" scripts/make_sample_lake.py --out demo/lake

export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"
# The local driver JVM starts on the class archive setup_venv.sh made (yololake jvm-archive).
JVM_OPTIONS="-Dlog4j.configurationFile=$ROOT/conf/log4j2.properties $("$ROOT/.venv/bin/yololake" jvm-archive --no-create)"
.venv/bin/spark-submit --master 'local[2]' \
    --driver-java-options "$JVM_OPTIONS" \
    jobs/build_dataset.py --config conf/demo.yaml \
    --annotations demo/lake/annotations --frames demo/lake/frames --images demo/lake \
    --out demo/dataset

echo
echo "dataset YAML: $ROOT/demo/dataset/dataset.yaml"
echo "train it (CPU, 1 epoch, real YOLOv5 through the launcher):" \
    ".venv/bin/yololake train --data demo/dataset --model yolov5n --weights '' --epochs 1 --img 128 --device cpu --batch-size 16"

# --- Videos to frames: generated videos -> sampled frames + manifest -> generated boxes -> YOLOv5 dataset ---
"$PY" -m yololake.samples.videos videos --out demo/videos        # 5 numbered videos, a text file, a truncated mp4
.venv/bin/spark-submit --master 'local[2]' \
    --driver-java-options "$JVM_OPTIONS" \
    jobs/extract_frames.py --config conf/extract_frames.yaml --videos demo/videos --out demo/frames \
    --fps 2 --overwrite
"$PY" -m yololake.samples.videos boxes --manifest demo/frames/manifest --out demo/video_boxes/boxes.parquet
.venv/bin/spark-submit --master 'local[2]' \
    --driver-java-options "$JVM_OPTIONS" \
    jobs/build_dataset.py --config conf/demo_video.yaml \
    --annotations demo/video_boxes --frames demo/frames/manifest --out demo/video_dataset
echo
echo "video frames: $ROOT/demo/frames (manifest/, quarantine/, stats.json)"
echo "video dataset YAML: $ROOT/demo/video_dataset/dataset.yaml"
