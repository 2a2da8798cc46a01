#!/usr/bin/env bash
# Every training run behind a headline number in README.md, then their table:
#   IMDB_DIR=../shared/data/imdb SST2_DIR=../shared/data/sst2 benchmarks/reproduce.sh [out dir]
# The one-thread runs go in two lanes side by side (a 2-core machine: about 20 minutes, and the
# four modern cells on IMDB about 13 more), then experiment=imdb_fast on both cores. The
# long-range lab's numbers come from benchmarks/lab.sh. A run whose metrics.json exists is kept, so an interrupted
# script continues where it stopped. `python -m rnnlab.tools.report` then writes the results table
# (a row per command, mean ± std over its seeds) to <out>/report/commands.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-logs/reproduce}"
mkdir -p "$out"
: "${IMDB_DIR:?set IMDB_DIR to an IMDB folder (Hub layout or aclImdb/)}"
: "${SST2_DIR:?set SST2_DIR to an SST-2 folder (Hub layout)}"
export IMDB_DIR SST2_DIR

run() {  # run <name> <overrides...>
  local name=$1
  shift
  [ -f "$out/$name/metrics.json" ] && return 0
  OMP_NUM_THREADS=1 python train.py "$@" callbacks.progress_bar=null hydra.run.dir="$out/$name" \
    > "$out/$name.log" 2>&1 || { echo "failed: $name (see $out/$name.log)" >&2; return 1; }
}

lane1() {
  run lstm model=lstm
  run rnn model=rnn
  run simplernn_baseline-seed42 experiment=simplernn_baseline seed=42
  run mingru model=mingru
  run lru model=lru
}
lane2() {
  run gru model=gru
  run simplernn_baseline-seed43 experiment=simplernn_baseline seed=43
  run simplernn_baseline-seed44 experiment=simplernn_baseline seed=44
  run sst2-lstm data=sst2 model=lstm
  run minlstm model=minlstm
  run indrnn model=indrnn
}
lane1 & first=$!
lane2 & second=$!
status=0
wait "$first" || status=1
wait "$second" || status=1
run imdb_fast experiment=imdb_fast || status=1

python -m rnnlab.tools.report "$out" --out "$out/report"
exit "$status"
