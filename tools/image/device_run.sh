#!/usr/bin/env bash
# On a lent GPU machine: rebuild the training set from .device-image/ (tools/image/device.py
# pack), train the emoji UNet from scratch for MINUTES, and leave in $OUT the EMA UNet in
# float16 (unet/), the training log and the last fixed-seed sample grid.
#   device run, carry [".device-image"]:  bash tools/image/device_run.sh 8
# Extra arguments go to train.py (e.g. --lr 1e-3). PYTHON, DATA, RUN override the defaults
# (a CPU rehearsal here: PYTHON=.venv/bin/python OUT=/tmp/out bash tools/image/device_run.sh
# 0.2 --device cpu --batch 8).
set -euo pipefail
minutes=${1:-8}
shift || true
py=${PYTHON:-python3}
data=${DATA:-/tmp/image-data}
run=${RUN:-/tmp/image-train}
: "${OUT:?OUT must name the folder that comes back}"
"$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .device-image/wheels/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$py" tools/image/device.py encode --out "$data"
"$py" tools/image/train.py --data "$data" --run "$run" --device cuda --batch 256 --lr 6e-4 \
    --threads 8 --minutes "$minutes" --text-encoder .device-image/minilm "$@" \
    2>&1 | tee "$OUT/train.log"
"$py" tools/image/device.py export --run "$run" --out "$OUT"
cp "$(ls -t "$run"/samples-*.png | head -1)" "$OUT/"
