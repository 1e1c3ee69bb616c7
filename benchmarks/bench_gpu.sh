#!/usr/bin/env bash
# The benchmark to run when a CUDA machine is available (under 5 minutes on one GPU).
#
#   1. bench_train's step on one GPU: fp32 (eager), bf16, fp16 (gradient scaler), channels_last,
#      and bf16 + channels_last, as samples/s and the ratio to fp32;
#   2. `ssgan train` on one GPU and, when there are several, DDP on all of them
#      (`--nproc-per-node N`), samples/s of the whole loop from metrics.jsonl, and the ratio.
#
# Usage: benchmarks/bench_gpu.sh   (PYTHON=... to choose the interpreter; default: python)
# Without CUDA it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench_gpu: no CUDA device here (torch.cuda.is_available() is False); nothing measured"
    exit 0
fi
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
NAME=$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "bench_gpu: $GPUS x $NAME, torch $("$PY" -c 'import torch; print(torch.__version__)')"

echo "== one GPU, the training step (paper model, batch 16, 100 batches each) =="
"$PY" benchmarks/bench_train.py --settings fp32,bf16,fp16,channels_last,bf16+channels_last \
    --batches 100 --fd-steps 0

echo "== the whole training loop, ssgan train (paper model, 40 generator steps) =="
RUN=(--preset paper-kicks
     --set 'data.source.count=1024' --set 'training.schedule="steps"'
     --set 'training.steps=40' --set 'training.eval_every=40'
     --set 'training.checkpoint_every_steps=0' --set 'training.fd_every_epoch=false'
     --set 'output.preview_wavs=0' --set "data.cache_dir=\"$WORK/cache\""
     --set "output.runs_dir=\"$WORK/runs\"" --device cuda)
samples_per_s() { "$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["samples_per_s"])' "$1"; }

"$PY" -m ssgan_cli train "${RUN[@]}" --name one > "$WORK/one.log" 2>&1 || { cat "$WORK/one.log"; exit 1; }
ONE=$(samples_per_s "$WORK/runs/one/metrics.jsonl")
printf '  1 GPU        %8.1f samples/s\n' "$ONE"
if [ "$GPUS" -gt 1 ]; then
    "$PY" -m ssgan_cli train "${RUN[@]}" --name ddp --nproc-per-node "$GPUS" > "$WORK/ddp.log" 2>&1 \
        || { cat "$WORK/ddp.log"; exit 1; }
    DDP=$(samples_per_s "$WORK/runs/ddp/metrics.jsonl")
    RATIO=$("$PY" -c "print(f'{$DDP / $ONE:.2f}')")
    printf '  DDP x %-6s %8.1f samples/s  (x%s of one GPU; batch 16 per rank)\n' "$GPUS" "$DDP" "$RATIO"
else
    echo "  DDP: one GPU visible, nothing to compare"
fi
