#!/usr/bin/env bash
# The GPU checks, as one script for a lent CUDA machine. Parts (--parts, default "step starter"):
#   speed    issue 17: DreamClear at the published size with random weights, ours (bf16, tiles,
#            T5 on the CPU) vs the published arrangement (fp32 + fp16 autocast, untiled VAE and
#            remover): 1024 px x4 at 50 iDDPM steps and the 20-step DPM-Solver++ path, model
#            load time, peak VRAM, and a 4096 px output's peak VRAM against 1024 px; then one
#            table of the issue's targets (engine/bench/targets.py);
#   step     the trainer issue: a DreamClear training step at the published size (bf16, batch 1
#            at 1024 px), with and without gradient checkpointing: step time and peak VRAM;
#   starter  the starter trained from scratch on the GPU for STARTER_MINUTES minutes
#            (resources/configs/starter-gpu.toml): steps/s and validation PSNR from step 0 on.
# Every part runs even if an earlier one failed, each section under its own timeout; results go
# to $OUT (default runs/gpu-check).
#
#   scripts/gpu_check.sh --parts speed            # issue 17 on a CUDA machine (~8 min)
#   scripts/gpu_check.sh --parts speed --dry-run  # the same logic on a CPU, tiny model (~3 min)
#   WHEELS=.whl scripts/gpu_check.sh              # where some packages must come from wheels
#
# Python: $PYTHON if set; else a venv (.venv-gpu) that sees the machine's own packages
# (--system-site-packages, so a preinstalled CUDA torch is used as is), with this project in it
# (editable, no dependencies fetched unless some are missing). What it used is printed first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
STARTER_MINUTES=${STARTER_MINUTES:-4}
PARTS=${PARTS:-step starter}
DEVICE=cuda
SIZE=published
while [[ $# -gt 0 ]]; do
    case "$1" in
        --parts) PARTS=${2//,/ }; shift 2 ;;
        --device) DEVICE=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --dry-run) DEVICE=cpu; SIZE=tiny; shift ;;
        -h|--help) sed -n 2,22p "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
STEP_SIZE=${STEP_SIZE:-$SIZE}              # tiny: a smoke test of this script on a CPU
STEP_RESOLUTION=${STEP_RESOLUTION:-1024}
if [[ $SIZE == tiny ]]; then
    # The same sections on the tiny model, small enough for a shared CPU.
    RES=64 BIG=128 RUNS=iddpm:2,dpm++:1 TEXT=small STEP_RESOLUTION=64
    T_STAGES=300 T_BIG=300
else
    RES=1024 BIG=4096 RUNS=iddpm:50,dpm++:20 TEXT=xxl
    T_STAGES=${T_STAGES:-330} T_BIG=${T_BIG:-150}
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

status=0
part() { echo; echo "=== $1 ($(date -u +%H:%M:%S))"; }
# section SECONDS NAME COMMAND...: run with a timeout; a failure or timeout marks the run failed
# and is said in the log, and the next section still runs.
section() {
    local seconds=$1 name=$2; shift 2
    part "$name (timeout ${seconds} s)"
    timeout --kill-after=10 "$seconds" "$@"
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        status=1
        [[ $rc -eq 124 || $rc -eq 137 ]] && echo "!!! $name: timed out after $seconds s" \
            || echo "!!! $name: failed (exit $rc)"
    fi
}

part "python"
if [[ -z "${PYTHON:-}" ]]; then
    venv=.venv-gpu
    [[ -x $venv/bin/python ]] || python3 -m venv --system-site-packages "$venv"
    PYTHON=$venv/bin/python
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
        || echo "(the project could not be installed editable; it runs from PYTHONPATH)"
fi
if [[ -n "${WHEELS:-}" ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/tmp/site"
fi
# The code from this checkout, and resources/ under its package name, whatever pip did.
mkdir -p /tmp/gpu-check-path && ln -sfn "$PWD/resources" /tmp/gpu-check-path/dreamclear_studio_resources
export PYTHONPATH="$PWD:/tmp/gpu-check-path${PYTHONPATH:+:$PYTHONPATH}"
missing=$("$PYTHON" - <<'PY'
import importlib.util
print(" ".join(m for m in ("torch", "diffusers", "transformers", "accelerate", "spandrel",
                           "safetensors", "PIL") if importlib.util.find_spec(m) is None))
PY
)
if [[ -n "$missing" ]]; then
    echo "missing: $missing; installing the project's dependencies (needs an index or WHEELS)"
    "$PYTHON" -m pip install -q ${WHEELS:+--find-links "$WHEELS"} -e . || exit 1
fi
"$PYTHON" - <<'PY' || exit 1
import sys, torch, diffusers, transformers
print("python", sys.executable, sys.version.split()[0])
print("torch", torch.__version__, "from", torch.__file__.rsplit("/", 2)[0],
      "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("diffusers", diffusers.__version__, "transformers", transformers.__version__)
PY
if [[ $DEVICE == cuda* ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi

if [[ " $PARTS " == *" speed "* ]]; then
    stages=("$PYTHON" -m dreamclear.cli bench stages --size "$SIZE" --device "$DEVICE")
    section "$T_STAGES" "DreamClear stages at $RES px x4 ($RUNS), ours vs published, loads" \
        "${stages[@]}" --resolution "$RES" --steps "$RUNS" --text-encoder "$TEXT" \
        --warmup --published-load --json "$OUT/stages-$RES.json"
    section "$T_BIG" "peak VRAM at $BIG px vs $RES px output (ours, 2 steps)" \
        "${stages[@]}" --resolution "$RES,$BIG" --steps iddpm:2 --text-encoder small \
        --arrangements ours --warmup --json "$OUT/stages-$BIG.json"
    part "issue 17 targets"
    "$PYTHON" -m engine.bench.targets "$OUT/stages-$RES.json" "$OUT/stages-$BIG.json" \
        | tee "$OUT/targets.md" || status=1
fi

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
