#!/usr/bin/env bash
# The GPU checks of the trainer issue, as one script for a lent CUDA machine:
#   1. a DreamClear training step at the published size with random weights (bf16, batch 1
#      at 1024 px), with and without gradient checkpointing: step time and peak VRAM;
#   2. the starter trained from scratch on the GPU for STARTER_MINUTES minutes
#      (resources/configs/starter-gpu.toml): steps/s and validation PSNR from step 0 on.
# Every part runs even if an earlier one failed; results go to $OUT (default runs/gpu-check).
#
#   scripts/gpu_check.sh                 # on a machine with this repo's dependencies
#   WHEELS=.whl scripts/gpu_check.sh     # where some must be installed from carried wheels
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
STARTER_MINUTES=${STARTER_MINUTES:-4}
PARTS=${PARTS:-step starter}               # which checks to run
STEP_SIZE=${STEP_SIZE:-published}          # tiny: a smoke test of this script on a CPU
STEP_RESOLUTION=${STEP_RESOLUTION:-1024}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}

if [[ -n "${WHEELS:-}" ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

status=0
part() { echo; echo "=== $1 ($(date -u +%H:%M:%S))"; }

part "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$PYTHON" -c 'import torch, diffusers, accelerate, spandrel; print("torch", torch.__version__, "cuda", torch.version.cuda, "diffusers", diffusers.__version__, "accelerate", accelerate.__version__)'

for checkpointing in --gradient-checkpointing ""; do
    [[ " $PARTS " == *" step "* ]] || break
    part "DreamClear training step, $STEP_SIZE size, bf16, batch 1 at $STEP_RESOLUTION ${checkpointing:-(no checkpointing)}"
    name=step${checkpointing:+-checkpointing}
    "$PYTHON" -m trainer.step_benchmark --size "$STEP_SIZE" --resolution "$STEP_RESOLUTION" --batch 1 \
        --precision bf16 $checkpointing --steps 5 --json "$OUT/$name.json" || status=1
done

[[ " $PARTS " == *" starter "* ]] || { part "done"; exit $status; }
part "starter trained from scratch on the GPU for $STARTER_MINUTES minutes"
run=/tmp/starter-gpu
rm -rf "$run"
started=$(date +%s)
"$PYTHON" -m dreamclear.cli train resources/configs/starter-gpu.toml --output-dir "$run" \
    --max-minutes "$STARTER_MINUTES" 2>&1 | tr "\r" "\n" | awk "NR % 25 == 0 || !/step\\/s/" || status=1
echo "wall time with validation and export: $(( $(date +%s) - started )) s"
"$PYTHON" - "$run" "$STARTER_MINUTES" <<'PY' || status=1
import csv, sys
from pathlib import Path
run, minutes = Path(sys.argv[1]), float(sys.argv[2])
losses = list(csv.DictReader(open(run / "losses.csv")))
rows = list(csv.DictReader(open(run / "validation" / "metrics.csv")))
steps = int(losses[-1]["step"])
print(f"optimiser steps: {steps} in {minutes} min: {steps / (60 * minutes):.2f} steps/s")
for row in rows:
    print(" ".join(f"{k}={float(v):.4f}" if k != "step" else f"step={v}" for k, v in row.items()))
first, last = rows[0], rows[-1]
print(f"validation PSNR-Y: step 0 {float(first['psnr_y']):.2f} dB -> step {last['step']} "
      f"{float(last['psnr_y']):.2f} dB (bicubic {float(last['psnr_y_bicubic']):.2f} dB, "
      f"gain over bicubic {float(last['psnr_y']) - float(last['psnr_y_bicubic']):+.2f} dB)")
PY
tar -czf "$OUT/starter-gpu.tgz" -C "$run" export losses.csv validation/metrics.csv || status=1

part "done"
exit $status
