#!/usr/bin/env bash
# The GPU check, for a one-GPU machine (about 5 minutes on an H100 or H200):
#   1. the `gpu` tests (tests/test_gpu.py);
#   2. one epoch of GRU-256 at max_len 400 on IMDB in 32-true and in bf16-mixed: wall time,
#      real tokens/s, peak GPU memory and GPU utilisation (NVML, sampled at every training step);
#   3. the throughput benchmark's table on the GPU.
# It writes benchmarks/results-gpu.md (or $1) with the device's name, and exits non-zero when
# any part failed (the other parts still run).
#   IMDB_DIR=../shared/data/imdb benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out_md="${1:-benchmarks/results-gpu.md}"
work="$(mktemp -d)"
export RNNLAB_CACHE="${RNNLAB_CACHE:-$work/cache}" PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
: "${IMDB_DIR:?set IMDB_DIR to an IMDB folder (Hub layout or aclImdb/)}"
status=0
started=$(date +%s)

python -m pytest tests/test_gpu.py -m gpu -q -p no:cacheprovider -W ignore 2>&1 | tee "$work/tests.log"
tests_rc=${PIPESTATUS[0]}
[ "$tests_rc" = 0 ] || status=1

for precision in 32-true bf16-mixed; do
  python train.py model=gru model.hidden_size=256 data.max_len=400 trainer=gpu \
    trainer.precision="$precision" trainer.max_epochs=1 test=false logger=csv \
    callbacks.progress_bar=null callbacks.gradient_flow=null hydra.run.dir="$work/epoch-$precision" \
    2>&1 | tail -n 5 || status=1
done

python benchmarks/throughput.py --data "$IMDB_DIR" --cache-dir "$RNNLAB_CACHE" --device cuda \
  --cells rnn lstm gru elman --hidden 128 256 --repeats 3 --restarts 0 \
  --out "$work/throughput.md" || status=1

python - "$work" "$out_md" "$tests_rc" "$(( $(date +%s) - started ))" <<'PY' || status=1
"""Gather the three parts into one Markdown file."""
import json, subprocess, sys
from pathlib import Path

import rnnlab
import torch

work, out, tests_rc, seconds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
gpu = subprocess.run(
    ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
    capture_output=True, text=True,
).stdout.strip()
tests = (work / "tests.log").read_text().strip().splitlines()
lines = [
    "# GPU check",
    "",
    f"`IMDB_DIR=<imdb> benchmarks/gpu_check.sh`, rnnlab {rnnlab.__version__}, "
    f"{__import__('datetime').date.today()}, {seconds} s in all.",
    f"Device: {gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
    f"cuDNN {torch.backends.cudnn.version()}.",
    "",
    "## The gpu tests",
    "",
    f"`python -m pytest tests/test_gpu.py -m gpu`: {tests[-1] if tests else 'no output'} "
    f"(exit {tests_rc}).",
    "",
    "## One epoch of GRU-256, max_len 400, IMDB train (22,500 reviews)",
    "",
    "`python train.py model=gru model.hidden_size=256 data.max_len=400 trainer=gpu "
    "trainer.precision=<p> trainer.max_epochs=1 test=false` (validation on 2,500 reviews "
    "included, tokenizing before it is not). GPU utilisation: NVML's (nvidia-smi's) share of "
    "time a kernel ran, read at every training step after the first three, median.",
    "",
    "| precision | fit time (s) | real tokens/s (median) | val acc | peak GPU memory (MiB) "
    "| GPU utilisation (median %) |",
    "|---|--:|--:|--:|--:|--:|",
]
for precision in ("32-true", "bf16-mixed"):
    metrics_file = work / f"epoch-{precision}" / "metrics.json"
    if not metrics_file.is_file():
        lines.append(f"| {precision} | failed | | | | |")
        continue
    m = json.loads(metrics_file.read_text())
    lines.append(
        f"| {precision} | {m.get('train_time_s')} | {m.get('train_tokens_per_s')} | "
        f"{m.get('val/acc_best', float('nan')):.4f} | {m.get('gpu_peak_memory_mib')} | "
        f"{m.get('gpu_utilization_pct')} |"
    )
lines += ["", "## Throughput benchmark on the GPU", ""]
table = work / "throughput.md"
lines.append(table.read_text().strip() if table.is_file() else "failed")
out.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
exit $status
