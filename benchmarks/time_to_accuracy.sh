#!/usr/bin/env bash
# Time to accuracy and start-up on this machine; run it alone on the machine:
#   1. `python train.py experiment=imdb_fast`, RUNS times (default 3), each from a cold cache:
#      wall clock from the command's start to its end (tokenizer training, encoding and the test
#      on the full 25k test split included) and the test accuracy;
#   2. RESTARTS (default 5) cached restarts of `python train.py` (the defaults): seconds from the
#      process's start to its first training step (metrics.json's startup_s).
# Writes a Markdown table to benchmarks/results-fast.md (or $1) and prints it.
#   IMDB_DIR=../shared/data/imdb benchmarks/time_to_accuracy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out_md="${1:-benchmarks/results-fast.md}"
work="$(mktemp -d)"
: "${IMDB_DIR:?set IMDB_DIR to an IMDB folder (Hub layout or aclImdb/)}"
runs="${RUNS:-3}" restarts="${RESTARTS:-5}"
common=(callbacks.progress_bar=null)

for i in $(seq "$runs"); do
  start=$(date +%s.%N)
  RNNLAB_CACHE="$work/cold-$i" python train.py experiment=imdb_fast "${common[@]}" \
    hydra.run.dir="$work/fast-$i" > "$work/fast-$i.log" 2>&1
  echo "$(date +%s.%N) - $start" | bc > "$work/fast-$i/wall_s"
  tail -n 1 "$work/fast-$i.log"
done

for i in $(seq 0 "$restarts"); do  # restart-0 fills the default config's cache, uncounted
  RNNLAB_CACHE="$work/cold-1" python train.py "${common[@]}" trainer.max_steps=1 test=false \
    hydra.run.dir="$work/restart-$i" > "$work/restart-$i.log" 2>&1
done

python - "$work" "$runs" "$restarts" "$out_md" <<'PY'
import json, platform, statistics, subprocess, sys
from pathlib import Path

import rnnlab

work, runs, restarts, out = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
fast = [
    (float((work / f"fast-{i}" / "wall_s").read_text()), json.loads((work / f"fast-{i}" / "metrics.json").read_text()))
    for i in range(1, runs + 1)
]
startup = [json.loads((work / f"restart-{i}" / "metrics.json").read_text())["startup_s"] for i in range(1, restarts + 1)]
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), platform.processor())
date = subprocess.run(["date", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
lines = [
    "# Time to accuracy and start-up",
    "",
    f"rnnlab {rnnlab.__version__}, {date}; {model}, {len(__import__('os').sched_getaffinity(0))} cores; "
    "`IMDB_DIR=../shared/data/imdb benchmarks/time_to_accuracy.sh`",
    "",
    "| run | wall clock (cold cache) | test acc | train time | train tokens/s |",
    "|---|--:|--:|--:|--:|",
]
for i, (wall, m) in enumerate(fast, 1):
    lines.append(f"| `experiment=imdb_fast` #{i} | {wall:.0f} s | {100 * m['test/acc']:.2f}% | {m['train_time_s']:.0f} s | {m['train_tokens_per_s']:,} |")
walls, accs = [w for w, _ in fast], [m["test/acc"] for _, m in fast]
lines += [
    f"| **median of {runs}** | **{statistics.median(walls):.0f} s** | **{100 * statistics.median(accs):.2f}%** | | |",
    "",
    f"Cached restart of `python train.py` to its first training step: median **{statistics.median(startup):.2f} s** "
    f"of {restarts} ({', '.join(f'{s:.2f}' for s in startup)} s).",
    "",
]
out.write_text("\n".join(lines))
print("\n".join(lines))
PY
